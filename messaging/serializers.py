"""Shapes of the messaging API (docs/api.md#sending, docs/api.md#reading). Serializers validate; they never send."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import Conversation, Message, MessageEvent, Status
from messaging.services import MAX_BODY_CHARS, MAX_BULK_RECIPIENTS


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": "+15551234567"},
            {"type": "array", "items": {"type": "string"}, "maxItems": MAX_BULK_RECIPIENTS},
        ]
    }
)
class RecipientsField(serializers.Field):
    """`to` is one number, or a list of up to 1000 for a bulk send."""

    default_error_messages = {
        "invalid": "Give one phone number as a string, or a list of them.",
        "too_many": f"At most {MAX_BULK_RECIPIENTS} recipients per request.",
        "empty": "At least one recipient is required.",
    }

    def to_internal_value(self, data: Any) -> str | list[str]:
        if isinstance(data, str):
            if "\x00" in data:
                self.fail("invalid")
            return data
        if isinstance(data, list):
            if not data:
                self.fail("empty")
            if len(data) > MAX_BULK_RECIPIENTS:
                self.fail("too_many")
            if not all(isinstance(item, str) and "\x00" not in item for item in data):
                self.fail("invalid")
            return data
        self.fail("invalid")
        raise AssertionError  # unreachable: fail() raises

    def to_representation(self, value: Any) -> Any:
        return value


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF would turn `5` or `true` into "5"/"True"."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false, and only those: DRF would also take "yes", "on", 1 or "0"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


MAX_METADATA_BYTES = 8 * 1024
MAX_METADATA_DEPTH = 10


def _check_json_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise serializers.ValidationError(f"Nest at most {MAX_METADATA_DEPTH} levels deep.")
    if isinstance(value, str):
        # PostgreSQL's jsonb cannot hold U+0000; storing it would be a server error.
        if "\x00" in value:
            raise serializers.ValidationError("Strings may not contain NUL characters.")
    elif isinstance(value, float) and not math.isfinite(value):
        # 1e400 parses as infinity, which JSON (and jsonb) cannot represent.
        raise serializers.ValidationError("Numbers must be finite.")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_json_value(inner, depth + 1)


class MetadataField(serializers.DictField):
    """The integrator's own JSON object, stored and returned as given (at most 8 KB)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        _check_json_value(value)
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(
                f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON."
            )
        return value


class SendSerializer(serializers.Serializer):
    to = RecipientsField()
    body = StrictCharField(max_length=MAX_BODY_CHARS, trim_whitespace=False)
    device_id = StrictCharField(required=False, allow_null=True, max_length=40)
    sim_slot = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=8)
    app_id = StrictCharField(required=False, allow_null=True, max_length=40)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    metadata = MetadataField(required=False, allow_null=True)
    # A message sent to a named device may still move to another line (docs/routing.md).
    failover = StrictBooleanField(required=False)
    # Hold the message while the recipient's local time is in the policy's quiet hours.
    respect_quiet_hours = StrictBooleanField(required=False)


# What a plain send may hold for `plain_send` to take it; anything else (times, metadata, a
# form-encoded body, a value of another type) goes through SendSerializer.
_PLAIN_SEND_FIELDS = frozenset(
    {"to", "body", "device_id", "sim_slot", "app_id", "failover", "respect_quiet_hours"}
)


def _clean_text(value: str) -> bool:
    # What StrictCharField's validators refuse: NUL, and lone surrogates (the only code points
    # UTF-8 cannot encode).
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def plain_send(data: Any) -> dict[str, Any] | None:
    """The validated data of a send that SendSerializer would accept as it is, or None.

    A send is checked on every request and SendSerializer builds its ten fields (deep copies)
    for each: this reads the common shape (JSON strings, ints and booleans) directly and
    answers None whenever anything could fail or be converted, so SendSerializer, alone,
    decides every refusal and every message. What it returns is what the serializer's
    `validated_data` holds for the same body (tests/api/test_send_validation.py compares them).
    """
    if type(data) is not dict or not data.keys() <= _PLAIN_SEND_FIELDS:
        return None
    to = data.get("to")
    if type(to) is str:
        if "\x00" in to:
            return None
    elif type(to) is list:
        if not 0 < len(to) <= MAX_BULK_RECIPIENTS:
            return None
        if not all(type(item) is str and "\x00" not in item for item in to):
            return None
    else:
        return None
    body = data.get("body")
    if type(body) is not str or not 0 < len(body) <= MAX_BODY_CHARS or not _clean_text(body):
        return None
    validated: dict[str, Any] = {"to": to, "body": body}
    for name in ("device_id", "app_id"):
        if name not in data:
            continue
        value = data[name]
        if value is not None:
            if type(value) is not str:
                return None
            value = value.strip()  # the field trims whitespace
            if not 0 < len(value) <= 40 or not _clean_text(value):
                return None
        validated[name] = value
    if "sim_slot" in data:
        slot = data["sim_slot"]
        if slot is not None and (type(slot) is not int or not 1 <= slot <= 8):
            return None
        validated["sim_slot"] = slot
    for name in ("failover", "respect_quiet_hours"):
        if name in data:
            if type(data[name]) is not bool:
                return None
            validated[name] = data[name]
    return validated


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ["status", "at", "detail"]


class BlankAsNullCharField(serializers.CharField):
    """null rather than "" for a number not known yet (a message still in the shared queue)."""

    def to_representation(self, value: Any) -> Any:
        return str(value) if value else None


class MessageSerializer(serializers.ModelSerializer):
    to = BlankAsNullCharField(source="to_number", allow_null=True)
    # "from" is a Python keyword; get_fields() renames this one.
    from_ = serializers.CharField(source="from_number")

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "status",
            "reason",
            "to",
            "from_",
            "body",
            "device_id",
            "app_id",
            "sim_slot",
            "segments",
            "encoding",
            "created_at",
            "send_at",
            "expires_at",
            "received_at",
            "sent_at",
            "delivered_at",
            "metadata",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        # Renamed here rather than at output so the OpenAPI document says "from" too; it sits
        # next to "to".
        fields: dict[str, serializers.Field] = {}
        for name, field in super().get_fields().items():
            if name != "from_":
                fields[name] = field
            if name == "to":
                fields["from"] = BlankAsNullCharField(source="from_number", allow_null=True)
        return fields


@functools.cache
def _shared_message_serializer() -> MessageSerializer:
    return MessageSerializer()


def message_data(message: Message) -> dict[str, Any]:
    """What `MessageSerializer(message).data` holds, from one serializer per process.

    A ModelSerializer builds its fields (model introspection, a deep copy of each declared
    one) for every instance: on the send path that took longer than writing the message. The
    fields keep nothing between calls (they read the message and the settings), so one set
    serves every message and every thread."""
    return dict(_shared_message_serializer().to_representation(message))


class MessageDetailSerializer(MessageSerializer):
    events = MessageEventSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events"]


class LastMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "direction", "status", "body", "created_at"]


class ConversationSerializer(serializers.ModelSerializer):
    last_message = LastMessageSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "phone",
            "last_message",
            "unread",
            "device_id",
            "sim_slot",
            "app_id",
            "tags",
            "updated_at",
        ]


class MessageFilterSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["inbound", "outbound"], required=False)
    status = serializers.ChoiceField(choices=Status.values, required=False)
    device_id = serializers.CharField(required=False)
    phone = serializers.CharField(required=False, trim_whitespace=False, max_length=64)
    # A bare date ("2026-11-01") means its midnight, UTC.
    since = serializers.DateTimeField(required=False, input_formats=["iso-8601", "%Y-%m-%d"])
    until = serializers.DateTimeField(required=False, input_formats=["iso-8601", "%Y-%m-%d"])


class SimGateSendSerializer(serializers.Serializer):
    """SimGate's `POST /v1/sms/send`: deviceId, phoneNumber|to, message|body."""

    deviceId = serializers.CharField(required=False, allow_null=True)
    phoneNumber = serializers.CharField(required=False)
    to = serializers.CharField(required=False)
    message = serializers.CharField(required=False, trim_whitespace=False)
    body = serializers.CharField(required=False, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        to = attrs.get("phoneNumber") or attrs.get("to")
        body = attrs.get("message") or attrs.get("body")
        errors = {}
        if not to:
            errors["phoneNumber"] = ["phoneNumber (or to) is required."]
        if not body:
            errors["message"] = ["message (or body) is required."]
        if errors:
            raise serializers.ValidationError(errors)
        return {"to": to, "body": body, "device_id": attrs.get("deviceId")}


class MySMSGateSendSerializer(serializers.Serializer):
    """MySMSGate's `POST /api/v1/send`: to, message, device_id, sim_slot."""

    to = serializers.CharField()
    message = serializers.CharField(trim_whitespace=False, max_length=MAX_BODY_CHARS)
    device_id = serializers.CharField(required=False, allow_null=True)
    sim_slot = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=8)
