"""The app's mobile API under /api/mobile/v1 (docs/phones/sms-gateway-app.md). Exact paths,
no trailing slashes: a redirect would turn the app's POST and PATCH into errors. The event
stream (`/events`) is routed by smsgate.asgi to phones.smsgateway.stream before Django."""

from django.urls import URLPattern, path

from phones.smsgateway import hooks, views

urlpatterns: list[URLPattern] = [
    path("api/mobile/v1/device", views.device, name="mobile-device"),
    path("api/mobile/v1/message", views.message, name="mobile-message"),
    path("api/mobile/v1/messages", views.message, name="mobile-messages"),
    path("api/mobile/v1/webhooks", views.webhooks, name="mobile-webhooks"),
    path("api/mobile/v1/settings", views.phone_settings, name="mobile-settings"),
    path("api/mobile/v1/webhooks/<str:event>", hooks.receive, name="mobile-webhook-receive"),
]
