"""The webhooks API (docs/webhooks.md#managing-endpoints-and-deliveries): admin only. Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks import services
from webhooks.models import Delivery, Endpoint
from webhooks.serializers import (
    DeliveryFilterSerializer,
    DeliverySerializer,
    EndpointInputSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    ReplaySerializer,
    RotateSerializer,
)


def _with_secret(endpoint: Endpoint, secret: str | None, code: int) -> Response:
    body = EndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
    return Response(body, status=code)


class WebhooksView(ListAPIView):
    serializer_class = EndpointSerializer

    def get_queryset(self) -> QuerySet[Endpoint]:
        return Endpoint.objects.filter(internal=False)

    @extend_schema(
        request=EndpointInputSerializer,
        responses={201: EndpointWithSecretSerializer},
        description="Create a webhook endpoint. The secret is in this response only.",
    )
    def post(self, request: Request) -> Response:
        form = EndpointInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        endpoint, secret = services.create_endpoint(**form.validated_data)
        return _with_secret(endpoint, secret, status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(responses=EndpointSerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(EndpointSerializer(services.get_endpoint(pk)).data)

    @extend_schema(request=EndpointUpdateSerializer, responses=EndpointSerializer)
    def patch(self, request: Request, pk: str) -> Response:
        services.get_endpoint(pk)
        form = EndpointUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        endpoint = services.update_endpoint(endpoint_id=pk, changes=dict(form.validated_data))
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_endpoint(endpoint_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(APIView):
    @extend_schema(
        request=RotateSerializer,
        responses=EndpointWithSecretSerializer,
        description="A new secret, shown once; the previous one stays valid (signatures are "
        "sent with both) for 24 hours.",
    )
    def post(self, request: Request, pk: str) -> Response:
        form = RotateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        endpoint, secret = services.rotate_secret(
            endpoint_id=pk, secret=form.validated_data.get("secret")
        )
        return _with_secret(endpoint, secret, status.HTTP_200_OK)


class WebhookTestView(APIView):
    @extend_schema(
        request=None,
        responses=DeliverySerializer,
        description="Send a signed `ping` event now and return the delivery with its attempt.",
    )
    def post(self, request: Request, pk: str) -> Response:
        return Response(DeliverySerializer(services.send_test(endpoint_id=pk)).data)


class WebhookDeliveriesView(ListAPIView):
    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        endpoint = services.get_endpoint(self.kwargs["pk"])
        filters = DeliveryFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        qs = (
            Delivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .prefetch_related("attempts")
        )
        if "status" in filters.validated_data:
            qs = qs.filter(status=filters.validated_data["status"])
        return qs

    @extend_schema(parameters=[DeliveryFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class WebhookReplayView(APIView):
    @extend_schema(
        request=ReplaySerializer,
        responses={202: inline_serializer("Replayed", {"replayed": serializers.IntegerField()})},
        description="Send again every finished delivery of this endpoint created since `since`.",
    )
    def post(self, request: Request, pk: str) -> Response:
        form = ReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        count = services.replay_deliveries(endpoint_id=pk, since=form.validated_data["since"])
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)


class DeliveryDetailView(APIView):
    @extend_schema(responses=DeliverySerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(DeliverySerializer(services.get_delivery(pk)).data)


class DeliveryRetryView(APIView):
    @extend_schema(
        request=None,
        responses=DeliverySerializer,
        description="Make a new attempt now and return the delivery with its attempts.",
    )
    def post(self, request: Request, pk: str) -> Response:
        return Response(DeliverySerializer(services.retry_delivery(delivery_id=pk)).data)
