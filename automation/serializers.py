"""Shapes of the automation and opt-out API (docs/automation.md). Serializers validate shape only;
the services validate conditions and actions (so the API and the dashboard agree)."""

from __future__ import annotations

from rest_framework import serializers

from automation.models import Rule, RuleHit
from messaging.models import OptOut
from messaging.services import MAX_BODY_CHARS


class RuleSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=100)
    priority = serializers.IntegerField(required=False, min_value=-1_000_000, max_value=1_000_000)
    match = serializers.JSONField(
        required=False,
        help_text='Conditions, all of which must hold: {"keywords": [..], "contains", "regex", '
        '"sender" (exact or * glob), "device_id"}.',
    )
    actions = serializers.JSONField(
        help_text='Ordered actions: {"type": "reply", "text"}, {"type": "forward", '
        '"webhook_id"} or {"type": "forward", "url", "format"}, {"type": "opt_out"}, '
        '{"type": "opt_in"}, {"type": "tag", "tag"}.'
    )

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "enabled",
            "priority",
            "match",
            "actions",
            "stop",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ReorderSerializer(serializers.Serializer):
    order = serializers.ListField(child=serializers.CharField(max_length=40), max_length=1000)


class DryRunSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=MAX_BODY_CHARS, trim_whitespace=False)
    device_id = serializers.CharField(
        max_length=40, required=False, allow_null=True, allow_blank=True
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so it cannot be declared as a class attribute.
        return {"from": serializers.CharField(max_length=64), **super().get_fields()}


class DryRunMatchSerializer(serializers.Serializer):
    rule_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    builtin = serializers.CharField(allow_blank=True)
    actions = serializers.ListField(child=serializers.DictField())


class DryRunResultSerializer(serializers.Serializer):
    matches = DryRunMatchSerializer(many=True)
    opted_out = serializers.BooleanField()
    replies = serializers.ListField(child=serializers.CharField())


class RuleHitSerializer(serializers.ModelSerializer):
    rule_id = serializers.CharField(allow_null=True)
    message_id = serializers.CharField(allow_null=True)
    actions = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = RuleHit
        fields = [
            "id",
            "rule_id",
            "rule_name",
            "builtin",
            "message_id",
            "phone",
            "actions",
            "suppressed",
            "created_at",
        ]


class RuleHitFilterSerializer(serializers.Serializer):
    rule_id = serializers.CharField(required=False, max_length=40)
    message_id = serializers.CharField(required=False, max_length=40)
    phone = serializers.CharField(required=False, max_length=64)
    suppressed = serializers.BooleanField(required=False, allow_null=True, default=None)


class OptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptOut
        fields = ["phone", "at", "source"]


class OptOutCreateSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=64)
