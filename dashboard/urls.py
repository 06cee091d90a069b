from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from dashboard.views import (
    apps,
    broadcasts,
    devices,
    home,
    inbox,
    keys,
    logs,
    optouts,
    routing,
    rules,
    users,
    webhooks,
)

app_name = "dashboard"

urlpatterns = [
    # Browsers ask for /favicon.ico whatever the page links; send them to the SVG icon.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("", home.home, name="home"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/compose/", inbox.compose, name="compose"),
    path("inbox/unread/", inbox.unread, name="unread"),
    path("inbox/<str:conversation_id>/", inbox.thread, name="thread"),
    path("inbox/<str:conversation_id>/send/", inbox.send, name="send"),
    path(
        "inbox/<str:conversation_id>/m/<str:message_id>/cancel/",
        inbox.cancel,
        name="cancel",
    ),
    path("inbox/<str:conversation_id>/read/", inbox.mark_read, name="mark-read"),
    path("inbox/<str:conversation_id>/row/", inbox.conversation_row, name="conversation-row"),
    path(
        "inbox/<str:conversation_id>/m/<str:message_id>/",
        inbox.message_bubble,
        name="message-bubble",
    ),
    path("broadcasts/", broadcasts.broadcasts, name="broadcasts"),
    path("broadcasts/<int:broadcast_id>/", broadcasts.broadcast, name="broadcast"),
    path(
        "broadcasts/<int:broadcast_id>/progress/",
        broadcasts.broadcast_progress,
        name="broadcast-progress",
    ),
    path("opt-outs/", optouts.optout_list, name="optouts"),
    path("opt-outs/add/", optouts.optout_add, name="optout-add"),
    path("opt-outs/remove/", optouts.optout_remove, name="optout-remove"),
    path("logs/", logs.log_list, name="logs"),
    path("logs/<str:request_id>/", logs.log_detail, name="log-detail"),
    path("devices/", devices.device_list, name="devices"),
    path("devices/new/", devices.device_create, name="device-create"),
    path("devices/<str:device_id>/rotate/", devices.device_rotate, name="device-rotate"),
    path("devices/<str:device_id>/enabled/", devices.device_toggle, name="device-toggle"),
    path("apps/", apps.app_list, name="apps"),
    path("apps/new/", apps.app_create, name="app-create"),
    path("apps/<str:app_id>/", apps.app_edit, name="app-edit"),
    path("apps/<str:app_id>/enabled/", apps.app_toggle, name="app-toggle"),
    path("apps/<str:app_id>/delete/", apps.app_delete, name="app-delete"),
    path("routing/", routing.routing, name="routing"),
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/new/", webhooks.webhook_create, name="webhook-create"),
    path(
        "webhooks/deliveries/<str:delivery_id>/retry/",
        webhooks.delivery_retry,
        name="delivery-retry",
    ),
    path("webhooks/<str:endpoint_id>/", webhooks.webhook_detail, name="webhook"),
    path("webhooks/<str:endpoint_id>/enabled/", webhooks.webhook_toggle, name="webhook-toggle"),
    path("webhooks/<str:endpoint_id>/test/", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<str:endpoint_id>/replay/", webhooks.webhook_replay, name="webhook-replay"),
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_edit, name="rule-new"),
    path("rules/dry-run/", rules.rule_dry_run, name="rule-dry-run"),
    path("rules/<str:rule_id>/", rules.rule_edit, name="rule-edit"),
    path("rules/<str:rule_id>/move/", rules.rule_move, name="rule-move"),
    path("rules/<str:rule_id>/delete/", rules.rule_delete, name="rule-delete"),
    path("users/", users.user_list, name="users"),
    path("users/new/", users.user_create, name="user-create"),
    path("users/<int:user_id>/active/", users.user_active, name="user-active"),
    path("keys/", keys.key_list, name="keys"),
    path("keys/create/", keys.key_create, name="key-create"),
    path("keys/<str:key_id>/revoke/", keys.key_revoke, name="key-revoke"),
]
