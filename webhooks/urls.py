from django.urls import URLPattern, URLResolver, path

from webhooks import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/webhooks", views.WebhooksView.as_view(), name="webhooks"),
    path(
        "api/v1/webhooks/deliveries/<str:pk>",
        views.DeliveryDetailView.as_view(),
        name="webhook-delivery",
    ),
    path(
        "api/v1/webhooks/deliveries/<str:pk>/retry",
        views.DeliveryRetryView.as_view(),
        name="webhook-delivery-retry",
    ),
    path("api/v1/webhooks/<str:pk>", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "api/v1/webhooks/<str:pk>/rotate-secret",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("api/v1/webhooks/<str:pk>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path(
        "api/v1/webhooks/<str:pk>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "api/v1/webhooks/<str:pk>/replay", views.WebhookReplayView.as_view(), name="webhook-replay"
    ),
]
