from django.urls import path

from smsgate import api_views

urlpatterns = [
    path("api/v1/api-keys", api_views.APIKeysView.as_view(), name="api-keys"),
    path("api/v1/api-keys/<str:pk>", api_views.APIKeyRevokeView.as_view(), name="api-key-detail"),
]
