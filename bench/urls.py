from django.urls import URLPattern, path

from bench import views

urlpatterns: list[URLPattern] = [
    path("bench/json", views.plain_json, name="bench-json"),
    path("bench/ingest", views.bare_ingest, name="bench-ingest"),
]
