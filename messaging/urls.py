from django.urls import path, re_path

from messaging import apps_api, provider_views, views

urlpatterns = [
    path("api/v1/messages", views.MessagesView.as_view(), name="messages"),
    path("api/v1/messages/<str:pk>", views.MessageDetailView.as_view(), name="message-detail"),
    path(
        "api/v1/messages/<str:pk>/cancel", views.MessageCancelView.as_view(), name="message-cancel"
    ),
    path("api/v1/conversations", views.ConversationsView.as_view(), name="conversations"),
    path(
        "api/v1/conversations/<str:pk>/messages",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path("v1/sms/send", views.SimGateSendView.as_view(), name="simgate-send"),
    path("api/v1/send", views.MySMSGateSendView.as_view(), name="mysmsgate-send"),
    path("api/v1/apps", apps_api.AppsView.as_view(), name="apps"),
    path("api/v1/apps/<str:pk>", apps_api.AppDetailView.as_view(), name="app-detail"),
    # With or without a trailing slash: a provider dashboard URL is pasted by hand, and a
    # redirect would lose a POST.
    re_path(
        r"^api/sms/apps/(?P<app_id>[^/]+)/receive/?$",
        provider_views.receive,
        name="provider-receive",
    ),
]
