"""`GET|PUT /api/v1/routing`: the routing policy (docs/routing.md#the-routing-policy). Admin
only, like every API view without its own permission. `messaging.policy` checks every value;
this view only refuses bodies that are not an object of the policy's fields."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import policy
from smsgate.errors import DomainError

_CLOCK = RegexValidator(r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$", "A time of day as HH:MM (24-hour).")


class QuietHoursSerializer(serializers.Serializer):
    start = serializers.CharField(
        validators=[_CLOCK], help_text="Local time the window opens, HH:MM (e.g. 21:00)."
    )
    end = serializers.CharField(
        validators=[_CLOCK],
        help_text="Local time it closes, HH:MM (e.g. 08:00); before `start`, it spans midnight.",
    )


class RoutingPolicySerializer(serializers.Serializer):
    """The policy as it reads; also the shape of `PUT`, where every field is optional. It
    documents the shape for the OpenAPI document: `messaging.policy` does the checking, so the
    API and the dashboard accept and refuse the same values."""

    fallback_app_id = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="The provider app (`app_…`) that sends what no phone can; it must be able to "
        "send. `null`: no fallback.",
    )
    reroute_after = serializers.IntegerField(
        min_value=0,
        max_value=policy.MAX_REROUTE_AFTER,
        required=False,
        help_text="Seconds a message may wait on a phone that is offline or paced out before "
        "it moves to another line.",
    )
    max_attempts = serializers.IntegerField(
        min_value=1,
        max_value=policy.MAX_ATTEMPTS,
        required=False,
        help_text="Lines a message may try in all (the first one included) before it fails.",
    )
    quiet_hours = QuietHoursSerializer(
        allow_null=True,
        required=False,
        help_text="The daily window, in each recipient's local time, when broadcasts and "
        "messages sent with `respect_quiet_hours` wait; `null`: off.",
    )


FIELDS = frozenset(RoutingPolicySerializer().fields)


def _changes(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DomainError(
            "The body must be a JSON object with any of: " + ", ".join(sorted(FIELDS)) + "."
        )
    unknown = sorted(str(name) for name in body if name not in FIELDS)
    if unknown:
        # A misspelt field silently ignored would leave the policy unchanged while the caller
        # believes it saved.
        problem = "Not a field of the routing policy."
        raise DomainError(
            f"Unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.",
            fields={name: [problem] for name in unknown},
        )
    return dict(body)


class RoutingPolicyView(APIView):
    @extend_schema(responses=RoutingPolicySerializer)
    def get(self, request: Request) -> Response:
        return Response(policy.current_policy().as_json())

    @extend_schema(
        request=RoutingPolicySerializer,
        responses=RoutingPolicySerializer,
        description="Save the routing policy. Fields left out keep their values; nothing is "
        "saved when any field is refused. Answers with the saved policy.",
    )
    def put(self, request: Request) -> Response:
        saved = policy.update_policy(**_changes(request.data))
        return Response(saved.as_json())
