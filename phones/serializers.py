"""Shapes of the devices API (docs/api.md#devices). Serializers validate; they never change anything."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.models import Device
from devices.services import MAX_SIM_SLOT


class SimSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=MAX_SIM_SLOT)
    number = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")


MAX_LIMIT = 2_147_483_647


class LimitsSerializer(serializers.Serializer):
    """Segments per SIM in each window; null means no limit in that window."""

    # The columns are PositiveIntegerField: a larger number is a 400 here, not a 500 there.
    per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_LIMIT
    )
    per_hour = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_LIMIT
    )
    per_day = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_LIMIT
    )


class DeviceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    sims = SimSerializer(many=True, required=False)
    limits = LimitsSerializer(required=False)


class DeviceUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    enabled = serializers.BooleanField(required=False)
    sims = SimSerializer(many=True, required=False, allow_empty=False)
    limits = LimitsSerializer(required=False)


class LocationSerializer(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    accuracy = serializers.FloatField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)


class DeviceSerializer(serializers.ModelSerializer):
    location = serializers.SerializerMethodField()
    sims = SimSerializer(many=True, read_only=True)
    limits = serializers.SerializerMethodField()
    queued = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "name",
            "enabled",
            "online",
            "last_seen_at",
            "battery_level",
            "signal_strength",
            "network_type",
            "sim_state",
            "location",
            "sims",
            "limits",
            "queued",
        ]

    @extend_schema_field(LocationSerializer(allow_null=True))
    def get_location(self, device: Device) -> dict[str, Any] | None:
        if device.latitude is None or device.longitude is None:
            return None
        return dict(
            LocationSerializer(
                {
                    "latitude": device.latitude,
                    "longitude": device.longitude,
                    "accuracy": device.location_accuracy,
                    "at": device.location_at,
                }
            ).data
        )

    @extend_schema_field(LimitsSerializer)
    def get_limits(self, device: Device) -> dict[str, int | None]:
        return {
            "per_minute": device.limit_per_minute,
            "per_hour": device.limit_per_hour,
            "per_day": device.limit_per_day,
        }

    def get_queued(self, device: Device) -> int:
        return int(getattr(device, "queued_count", 0) or 0)


class AppPairingSerializer(serializers.Serializer):
    """What the SMS Gateway for Android app needs (docs/phones/sms-gateway-app.md): its
    Settings → Cloud server → API URL and Private Token."""

    server_url = serializers.URLField(help_text="The app's API URL: <server>/api/mobile/v1.")
    private_token = serializers.CharField(
        help_text="The app's Private Token; shown only here, stored hashed."
    )


class PairingPayloadSerializer(serializers.Serializer):
    server = serializers.URLField()
    device_id = serializers.CharField()
    token = serializers.CharField()
    smssync_url = serializers.URLField()
    msync_url = serializers.URLField()
    app = AppPairingSerializer()


class PairingSerializer(serializers.Serializer):
    qr_url = serializers.CharField()
    payload = PairingPayloadSerializer()


class DeviceCredentialsSerializer(DeviceSerializer):
    token = serializers.CharField(read_only=True)
    smssync_secret = serializers.CharField(read_only=True)
    pairing = PairingSerializer(read_only=True)

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "token", "smssync_secret", "pairing"]
