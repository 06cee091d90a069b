from django.urls import URLPattern, URLResolver, include, path

from phones import views

# Exact paths without trailing slashes: SMSSync's HTTP client turns a redirected POST into a
# body-less GET, so APPEND_SLASH must never have a reason to redirect a phone.
urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/devices", views.DevicesView.as_view(), name="devices"),
    path("api/v1/devices/<str:pk>", views.DeviceDetailView.as_view(), name="device-detail"),
    path(
        "api/v1/devices/<str:pk>/rotate-credentials",
        views.RotateCredentialsView.as_view(),
        name="device-rotate-credentials",
    ),
    path("api/sms/smssync", views.smssync, name="smssync"),
    path("api/sms/msync", views.msync, name="msync"),
    path("", include("phones.smsgateway.urls")),
]
