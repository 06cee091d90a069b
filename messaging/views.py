"""The send and read API (docs/api.md#sending, docs/api.md#reading). Thin: parse, authorise, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import services
from messaging.idempotency import run_idempotently
from messaging.models import Conversation, Message
from messaging.serializers import (
    ConversationSerializer,
    MessageDetailSerializer,
    MessageFilterSerializer,
    MessageSerializer,
    MySMSGateSendSerializer,
    SendSerializer,
    SimGateSendSerializer,
    message_data,
    plain_send,
)
from smsgate.auth import IsStaffOrAdmin
from smsgate.errors import NotFound
from smsgate.pagination import RecentActivityCursorPagination
from smsgate.phones import normalize_sender


def _bulk_entries(results: list[services.BulkResult]) -> list[dict[str, Any]]:
    # One serializer per process (message_data): building a ModelSerializer's fields per
    # message took longer than writing the message.
    entries = []
    for result in results:
        if result.message is not None:
            entries.append(message_data(result.message))
            continue
        assert result.error is not None
        error = {"code": result.error.code, "message": result.error.message}
        entries.append({"to": result.to, "error": error})
    return entries


def _send(validated: dict[str, Any]) -> Response:
    common = {k: v for k, v in validated.items() if k != "to" and v is not None}
    if isinstance(validated["to"], list):
        results = services.send_bulk(recipients=validated["to"], **common)
        return Response({"results": _bulk_entries(results)}, status=status.HTTP_202_ACCEPTED)
    message = services.send_message(to=validated["to"], **common)
    return Response(message_data(message), status=status.HTTP_202_ACCEPTED)


# The documented shapes of a send: one message, or `{"results": [...]}` for a list of recipients
# where each entry is the queued message or that recipient's refusal.
_BULK_REFUSAL = inline_serializer(
    "BulkSendRefusal",
    {
        "to": serializers.CharField(),
        "error": inline_serializer(
            "BulkSendError", {"code": serializers.CharField(), "message": serializers.CharField()}
        ),
    },
)
_SEND_RESULT = PolymorphicProxySerializer(
    component_name="SendResult",
    serializers=[
        MessageSerializer,
        inline_serializer(
            "BulkSendResult",
            {
                "results": PolymorphicProxySerializer(
                    component_name="BulkSendEntry",
                    serializers=[MessageSerializer, _BULK_REFUSAL],
                    resource_type_field_name=None,
                    many=True,
                )
            },
        ),
    ],
    resource_type_field_name=None,
)

# MySMSGate clients read `{"success": false, "error"}` on every refusal (see handle_exception).
_MYSMSGATE_REFUSAL = inline_serializer(
    "MySMSGateRefusal",
    {
        "success": serializers.BooleanField(),
        "error": serializers.CharField(),
        "code": serializers.CharField(),
    },
)


class MessagesView(ListAPIView):
    permission_classes = [IsStaffOrAdmin]
    serializer_class = MessageSerializer

    def get_queryset(self) -> QuerySet[Message]:
        filters = MessageFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = Message.objects.all()
        if "direction" in f:
            qs = qs.filter(direction=f["direction"])
        if "status" in f:
            qs = qs.filter(status=f["status"])
        if "device_id" in f:
            qs = qs.filter(device_id=f["device_id"])
        if "phone" in f:
            phone = f["phone"]
            # An unencoded "+" in a query string arrives as a space: "?phone=+1555…".
            if phone.startswith(" "):
                phone = "+" + phone.lstrip()
            phone = normalize_sender(phone)
            qs = qs.filter(Q(from_number=phone) | Q(to_number=phone))
        if "since" in f:
            qs = qs.filter(created_at__gte=f["since"])
        if "until" in f:
            qs = qs.filter(created_at__lt=f["until"])
        return qs

    @extend_schema(parameters=[MessageFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=SendSerializer,
        responses={202: _SEND_RESULT, 200: _SEND_RESULT},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        description="Send one message, or up to 1000 when `to` is a list (the response is "
        'then `{"results": [...]}`, one entry per recipient in order).',
    )
    def post(self, request: Request) -> Response:
        def run() -> Response:
            validated = plain_send(request.data)
            if validated is None:
                serializer = SendSerializer(data=request.data)
                serializer.is_valid(raise_exception=True)
                validated = serializer.validated_data
            return _send(validated)

        return run_idempotently(request, run)


class MessageDetailView(RetrieveAPIView):
    permission_classes = [IsStaffOrAdmin]
    serializer_class = MessageDetailSerializer
    queryset = Message.objects.prefetch_related("events")


class MessageCancelView(APIView):
    permission_classes = [IsStaffOrAdmin]

    @extend_schema(request=None, responses={200: MessageSerializer})
    def post(self, request: Request, pk: str) -> Response:
        message = services.cancel_message(message_id=pk)
        return Response(MessageSerializer(message).data)


class ConversationsView(ListAPIView):
    permission_classes = [IsStaffOrAdmin]
    serializer_class = ConversationSerializer
    queryset = Conversation.objects.select_related("last_message")
    pagination_class = RecentActivityCursorPagination


class ConversationMessagesView(ListAPIView):
    permission_classes = [IsStaffOrAdmin]
    serializer_class = MessageSerializer

    def get_queryset(self) -> QuerySet[Message]:
        if not Conversation.objects.filter(pk=self.kwargs["pk"]).exists():
            raise NotFound(f"There is no conversation {self.kwargs['pk']!r}.")
        return Message.objects.filter(conversation_id=self.kwargs["pk"])


class SimGateSendView(APIView):
    """`POST /v1/sms/send`, for integrations written against SimGate."""

    permission_classes = [IsStaffOrAdmin]

    @extend_schema(
        request=SimGateSendSerializer,
        responses={
            202: inline_serializer(
                "SimGateSent", {"id": serializers.CharField(), "status": serializers.CharField()}
            )
        },
    )
    def post(self, request: Request) -> Response:
        def run() -> Response:
            serializer = SimGateSendSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            message = services.send_message(**serializer.validated_data)
            return Response({"id": message.pk, "status": message.status}, status=202)

        return run_idempotently(request, run)


class MySMSGateSendView(APIView):
    """`POST /api/v1/send`, for integrations written against MySMSGate."""

    permission_classes = [IsStaffOrAdmin]

    @extend_schema(
        request=MySMSGateSendSerializer,
        responses={
            200: inline_serializer(
                "MySMSGateSent",
                {
                    "success": serializers.BooleanField(),
                    "message_id": serializers.CharField(),
                    "status": serializers.CharField(),
                },
            ),
            **dict.fromkeys(
                (400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429), _MYSMSGATE_REFUSAL
            ),
        },
    )
    def post(self, request: Request) -> Response:
        def run() -> Response:
            serializer = MySMSGateSendSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            message = services.send_message(
                to=data["to"],
                body=data["message"],
                device_id=data.get("device_id"),
                sim_slot=data.get("sim_slot"),
            )
            return Response({"success": True, "message_id": message.pk, "status": message.status})

        return run_idempotently(request, run)

    def handle_exception(self, exc: Exception) -> Response:
        # MySMSGate clients read `success`/`error`, so every refusal of this alias (bad JSON,
        # auth, validation, opt-out, throttling) keeps that shape, with the 4xx status and
        # headers (Retry-After, WWW-Authenticate) of the standard envelope.
        response = super().handle_exception(exc)
        envelope = response.data.get("error") if isinstance(response.data, dict) else None
        if isinstance(envelope, dict):
            response.data = {
                "success": False,
                "error": envelope.get("message", ""),
                "code": envelope.get("code", ""),
            }
        return response
