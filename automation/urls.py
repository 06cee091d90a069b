from django.urls import URLPattern, URLResolver, path

from automation import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/rules", views.RulesView.as_view(), name="rules"),
    path("api/v1/rules/test", views.RuleDryRunView.as_view(), name="rules-test"),
    path("api/v1/rules/reorder", views.RuleReorderView.as_view(), name="rules-reorder"),
    path("api/v1/rules/hits", views.RuleHitsView.as_view(), name="rule-hits"),
    path("api/v1/rules/<str:pk>", views.RuleDetailView.as_view(), name="rule-detail"),
    path("api/v1/opt-outs", views.OptOutsView.as_view(), name="opt-outs"),
    path("api/v1/opt-outs/<str:phone>", views.OptOutDetailView.as_view(), name="opt-out-detail"),
]
