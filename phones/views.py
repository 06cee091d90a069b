"""The devices API (docs/api.md#devices, admin only) and the phone endpoints. Thin."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import services
from devices.models import Device
from devices.pairing import pairing_for
from messaging.models import Message, Status
from phones.doors import msync as msync_door
from phones.doors import smssync as smssync_door
from phones.serializers import (
    DeviceCreateSerializer,
    DeviceCredentialsSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
)


def _devices() -> QuerySet[Device]:
    # A correlated count per device walks the (status, device) queue index; a join with a
    # filtered Count would read every message the device ever handled.
    queued = (
        Message.objects.filter(device=OuterRef("pk"), status=Status.QUEUED)
        .order_by()
        .values("device")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Device.objects.prefetch_related("sims").annotate(
        queued_count=Coalesce(Subquery(queued), 0)
    )


def _with_credentials(request: Request, credentials: services.Credentials) -> dict[str, Any]:
    device = _devices().get(pk=credentials.device.pk)
    device.token = credentials.token  # type: ignore[attr-defined]
    device.smssync_secret = credentials.smssync_secret  # type: ignore[attr-defined]
    device.pairing = pairing_for(  # type: ignore[attr-defined]
        device_id=device.pk,
        token=credentials.token,
        app_private_token=credentials.app_private_token,
        request=request,
    )
    return dict(DeviceCredentialsSerializer(device).data)


class DevicesView(ListAPIView):
    serializer_class = DeviceSerializer

    def get_queryset(self) -> QuerySet[Device]:
        return _devices()

    @extend_schema(
        request=DeviceCreateSerializer,
        responses={201: DeviceCredentialsSerializer},
        description=(
            "Register a phone. `token`, `smssync_secret` and `pairing.payload.app.private_token`"
            " are shown only here (and by rotate-credentials)."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = DeviceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credentials = services.register_device(**serializer.validated_data)
        return Response(_with_credentials(request, credentials), status=status.HTTP_201_CREATED)


class DeviceDetailView(RetrieveAPIView):
    serializer_class = DeviceSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Device]:
        return _devices()

    @extend_schema(request=DeviceUpdateSerializer, responses={200: DeviceSerializer})
    def patch(self, request: Request, pk: str) -> Response:
        serializer = DeviceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.update_device(device_id=pk, **serializer.validated_data)
        return Response(DeviceSerializer(_devices().get(pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_device(device_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateCredentialsView(APIView):
    @extend_schema(
        request=None,
        responses={200: DeviceCredentialsSerializer},
        description=(
            "New token, SMSSync secret and app private token; the old ones, and the device"
            " token the app got with the old private token, stop working at once."
        ),
    )
    def post(self, request: Request, pk: str) -> Response:
        credentials = services.rotate_credentials(device_id=pk)
        return Response(_with_credentials(request, credentials))


@csrf_exempt
def smssync(request: HttpRequest) -> JsonResponse:
    return smssync_door.answer_smssync(request)


@csrf_exempt
def msync(request: HttpRequest) -> JsonResponse:
    return msync_door.answer_msync(request)
