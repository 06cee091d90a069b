from django.urls import path

from thirdparty import health, views

app_name = "thirdparty"
PREFIX = "api/3rdparty/v1/"

urlpatterns = [
    path(PREFIX + "messages", views.MessagesView.as_view(), name="messages"),
    # Deprecated by the app's API in favour of inbox/refresh; its client still has it.
    path(PREFIX + "messages/inbox/export", views.InboxRefreshView.as_view(), name="inbox-export"),
    path(PREFIX + "messages/<str:message_id>", views.MessageView.as_view(), name="message"),
    path(PREFIX + "devices", views.DevicesView.as_view(), name="devices"),
    path(PREFIX + "devices/<str:device_id>", views.DeviceView.as_view(), name="device"),
    path(PREFIX + "webhooks", views.WebhooksView.as_view(), name="webhooks"),
    path(PREFIX + "webhooks/<str:webhook_id>", views.WebhookView.as_view(), name="webhook"),
    path(PREFIX + "settings", views.SettingsView.as_view(), name="settings"),
    path(PREFIX + "inbox/refresh", views.InboxRefreshView.as_view(), name="inbox-refresh"),
    path(PREFIX + "auth/token", views.TokenView.as_view(), name="token"),
    path(PREFIX + "auth/token/refresh", views.TokenRefreshView.as_view(), name="token-refresh"),
    path(PREFIX + "auth/token/<str:jti>", views.TokenRevokeView.as_view(), name="token-revoke"),
    path(PREFIX + "health", health.health, name="health"),
    path(PREFIX + "health/live", health.live, name="health-live"),
    path(PREFIX + "health/ready", health.ready, name="health-ready"),
    path(PREFIX + "health/startup", health.startup, name="health-startup"),
]
