from django.urls import path

from messaging import routing_views, views

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
    path("api/v1/routing", routing_views.RoutingPolicyView.as_view(), name="routing-policy"),
    path("v1/sms/send", views.SimGateSendView.as_view(), name="simgate-send"),
    path("api/v1/send", views.MySMSGateSendView.as_view(), name="mysmsgate-send"),
]
