"""`/api/v1/apps`: cloud number accounts (docs/providers/README.md). Admin only, like the default."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.models import ProviderApp
from providers import services
from providers.serializers import AppCreateSerializer, AppSerializer, AppUpdateSerializer
from smsgate.errors import NotFound


class AppsView(ListAPIView):
    serializer_class = AppSerializer

    def get_queryset(self) -> QuerySet[ProviderApp]:
        return ProviderApp.objects.all()

    @extend_schema(request=AppCreateSerializer, responses={201: AppSerializer})
    def post(self, request: Request) -> Response:
        serializer = AppCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        app = services.create_provider_app(**serializer.validated_data)
        return Response(
            AppSerializer(app, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class AppDetailView(APIView):
    serializer_class = AppSerializer

    def _get(self, pk: str) -> ProviderApp:
        app = ProviderApp.objects.filter(pk=pk).first()
        if app is None:
            raise NotFound(f"There is no provider app {pk!r}.")
        return app

    @extend_schema(responses={200: AppSerializer})
    def get(self, request: Request, pk: str) -> Response:
        return Response(AppSerializer(self._get(pk), context={"request": request}).data)

    @extend_schema(request=AppUpdateSerializer, responses={200: AppSerializer})
    def patch(self, request: Request, pk: str) -> Response:
        serializer = AppUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        app = services.update_provider_app(app_id=pk, **serializer.validated_data)
        return Response(AppSerializer(app, context={"request": request}).data)

    @extend_schema(request=AppUpdateSerializer, responses={200: AppSerializer})
    def put(self, request: Request, pk: str) -> Response:
        return self.patch(request, pk)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_provider_app(app_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
