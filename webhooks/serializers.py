"""Shapes of the webhooks API (docs/webhooks.md). Serializers check types; services decide."""

from __future__ import annotations

from rest_framework import serializers

from webhooks.models import SUBSCRIBABLE_EVENTS, Attempt, Delivery, Endpoint, Format
from webhooks.services import HISTORY_CHOICES, MAX_ATTEMPTS_LIMIT


class EndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    format = serializers.ChoiceField(choices=Format.choices, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENTS),
        allow_empty=False,
        required=False,
    )
    secret = serializers.CharField(
        max_length=200, required=False, allow_blank=True, trim_whitespace=False
    )
    filters = serializers.DictField(
        child=serializers.CharField(max_length=64, allow_blank=True, allow_null=True),
        required=False,
        allow_null=True,
    )
    history = serializers.ChoiceField(choices=HISTORY_CHOICES, required=False)
    max_attempts = serializers.IntegerField(
        min_value=1, max_value=MAX_ATTEMPTS_LIMIT, required=False
    )
    enabled = serializers.BooleanField(required=False)


class EndpointUpdateSerializer(EndpointInputSerializer):
    # A secret is changed through /rotate-secret, never patched.
    secret = None  # type: ignore[assignment]


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "format",
            "events",
            "filters",
            "history",
            "max_attempts",
            "enabled",
            "disabled_reason",
            "created_at",
        ]


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.SerializerMethodField()

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]

    def get_secret(self, endpoint: Endpoint) -> str | None:
        return self.context.get("secret")


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["at", "status_code", "duration_ms", "succeeded", "error", "response_excerpt"]


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.type")
    attempts = AttemptSerializer(many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event",
            "endpoint_id",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "completed_at",
        ]


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed"], required=False)


class ReplaySerializer(serializers.Serializer):
    since = serializers.DateTimeField()


class RotateSerializer(serializers.Serializer):
    secret = serializers.CharField(max_length=200, required=False, trim_whitespace=False)
