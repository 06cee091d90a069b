"""Shapes of the provider apps API (docs/providers/README.md). Credentials go in and never come out."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import ProviderApp
from providers.base import receive_url
from providers.services import credentials_of


class AppCreateSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=ProviderApp.Provider.choices)
    name = serializers.CharField(max_length=100)
    credentials = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True, max_length=500),
        help_text="Sending credentials are all or none: without them the app only receives "
        "(`can_send` false). twilio: auth_token (always, it verifies inbound), account_sid to "
        "send (messaging_service_sid); vonage: api_key, api_secret to send (signature_secret, "
        "signature_method md5hash|md5|sha1|sha256|sha512); africastalking: username, api_key to "
        "send (token); agiletelecom: none (username, password may be stored; Agile apps only "
        "receive).",
    )
    numbers = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list
    )
    enabled = serializers.BooleanField(required=False, default=True)


class AppUpdateSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=ProviderApp.Provider.choices, required=False)
    name = serializers.CharField(max_length=100, required=False)
    credentials = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True, max_length=500),
        required=False,
        help_text="Merged into the stored credentials; null removes a key.",
    )
    numbers = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    enabled = serializers.BooleanField(required=False)


class AppSerializer(serializers.ModelSerializer):
    numbers = serializers.ListField(child=serializers.CharField(), read_only=True)
    receive_url = serializers.SerializerMethodField()
    credential_keys = serializers.SerializerMethodField()
    can_send = serializers.BooleanField(
        read_only=True,
        help_text="False for an app that only receives (no sending credentials, or a provider "
        "whose sending is not supported): routing never picks it and a send naming it is 422 "
        "app_cannot_send.",
    )

    class Meta:
        model = ProviderApp
        fields = [
            "id",
            "provider",
            "name",
            "numbers",
            "enabled",
            "receive_url",
            "credential_keys",
            "can_send",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.CharField())
    def get_receive_url(self, app: ProviderApp) -> str:
        """Paste this into the provider's dashboard (Africa's Talking: add `?token=…`)."""
        return receive_url(app, self.context.get("request"))

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_credential_keys(self, app: ProviderApp) -> list[str]:
        """Which credentials are set (their values are never returned)."""
        return sorted(credentials_of(app))

    def to_representation(self, instance: ProviderApp) -> dict[str, Any]:
        return dict(super().to_representation(instance))
