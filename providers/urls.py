from django.urls import URLPattern, URLResolver, path, re_path

from providers import api, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/apps", api.AppsView.as_view(), name="apps"),
    path("api/v1/apps/<str:pk>", api.AppDetailView.as_view(), name="app-detail"),
    # With or without a trailing slash: a provider dashboard URL is pasted by hand, and a
    # redirect would lose a POST.
    re_path(
        r"^api/sms/apps/(?P<app_id>[^/]+)/receive/?$",
        views.receive,
        name="provider-receive",
    ),
]
