from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from smsgate import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("smsgate.api_urls")),
    path("", include("messaging.urls")),
    path("", include("phones.urls")),
    path("", include("providers.urls")),
    path("", include("thirdparty.urls")),
    path("", include("webhooks.urls")),
    path("", include("automation.urls")),
    path("", include("dashboard.urls")),
]
if settings.SMSGATE_BENCH_VIEWS:
    urlpatterns.append(path("", include("bench.urls")))

handler400 = "smsgate.errors.json_400"
handler403 = "smsgate.errors.json_403"
handler404 = "smsgate.errors.json_404"
handler500 = "smsgate.errors.json_500"
