"""The rules API, the dry run, the rule hit log and the opt-out list (docs/automation.md).

Thin: parse, authorise, call a service, render. Rules are admin-only (the default permission);
staff may read and add opt-outs (a customer asking on the phone), only admins remove one.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automation import services
from automation.models import Rule, RuleHit
from automation.serializers import (
    DryRunResultSerializer,
    DryRunSerializer,
    OptOutCreateSerializer,
    OptOutSerializer,
    ReorderSerializer,
    RuleHitFilterSerializer,
    RuleHitSerializer,
    RuleSerializer,
)
from messaging import optouts
from messaging.models import OptOut
from smsgate.auth import IsAdmin, IsStaffOrAdmin, Principal
from smsgate.errors import NotFound
from smsgate.pagination import NewestFirstCursorPagination
from smsgate.phones import to_e164


class EvaluationOrderPagination(NewestFirstCursorPagination):
    """Rules are listed in the order they run."""

    ordering = ("priority", "created_at", "id")


class OptOutPagination(NewestFirstCursorPagination):
    ordering = "-at"


def _rule_fields(validated: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in validated.items() if k in services.RULE_FIELDS}


class RulesView(ListAPIView):
    serializer_class = RuleSerializer
    pagination_class = EvaluationOrderPagination
    queryset = Rule.objects.all()

    @extend_schema(request=RuleSerializer, responses={201: RuleSerializer})
    def post(self, request: Request) -> Response:
        serializer = RuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = services.create_rule(**_rule_fields(serializer.validated_data))
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(APIView):
    @extend_schema(responses={200: RuleSerializer})
    def get(self, request: Request, pk: str) -> Response:
        return Response(RuleSerializer(services.get_rule(pk)).data)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        rule = services.get_rule(pk)
        serializer = RuleSerializer(rule, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = _rule_fields(serializer.validated_data)
        if not partial:
            # PUT replaces the whole rule: omitted optional fields go back to their defaults.
            changes = {"match": None, "enabled": True, "priority": 100, "stop": False, **changes}
        rule = services.update_rule(rule_id=pk, **changes)
        return Response(RuleSerializer(rule).data)

    @extend_schema(request=RuleSerializer, responses={200: RuleSerializer})
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=RuleSerializer, responses={200: RuleSerializer})
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_rule(rule_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleReorderView(APIView):
    @extend_schema(
        request=ReorderSerializer,
        responses={
            200: inline_serializer(
                "RuleOrder",
                {
                    "results": RuleSerializer(many=True),
                    "next": serializers.CharField(allow_null=True),
                },
            )
        },
        description="The listed rules run first, in this order; the others keep their order "
        "after them. Priorities are rewritten 10, 20, 30…",
    )
    def post(self, request: Request) -> Response:
        serializer = ReorderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rules = services.reorder_rules(order=serializer.validated_data["order"])
        return Response({"results": RuleSerializer(rules, many=True).data, "next": None})


class RuleDryRunView(APIView):
    @extend_schema(request=DryRunSerializer, responses={200: DryRunResultSerializer})
    def post(self, request: Request) -> Response:
        serializer = DryRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.dry_run(
            phone=data["from"], body=data["body"], device_id=data.get("device_id")
        )
        return Response(DryRunResultSerializer(result).data)


class RuleHitsView(ListAPIView):
    serializer_class = RuleHitSerializer

    def get_queryset(self) -> QuerySet[RuleHit]:
        filters = RuleHitFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = RuleHit.objects.all()
        if f.get("rule_id"):
            qs = qs.filter(rule_id=f["rule_id"])
        if f.get("message_id"):
            qs = qs.filter(message_id=f["message_id"])
        if f.get("phone"):
            qs = qs.filter(phone=f["phone"])
        if f.get("suppressed") is not None:
            qs = qs.filter(suppressed=f["suppressed"])
        return qs

    @extend_schema(parameters=[RuleHitFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OptOutsView(ListAPIView):
    permission_classes = [IsStaffOrAdmin]
    serializer_class = OptOutSerializer
    pagination_class = OptOutPagination
    queryset = OptOut.objects.all()

    @extend_schema(
        request=OptOutCreateSerializer,
        responses={201: OptOutSerializer, 200: OptOutSerializer},
        description="Add a number to the opt-out list (200 when it already was on it).",
    )
    def post(self, request: Request) -> Response:
        serializer = OptOutCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        principal = request.user
        source = "dashboard" if isinstance(principal, Principal) and principal.user else "api"
        result = optouts.opt_out(serializer.validated_data["phone"], source)
        return Response(
            OptOutSerializer(result.opt_out).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class OptOutDetailView(APIView):
    def get_permissions(self) -> list[Any]:
        # Reading is like the list (staff too); opting someone back in is for admins.
        return [IsAdmin()] if self.request.method == "DELETE" else [IsStaffOrAdmin()]

    @extend_schema(responses={200: OptOutSerializer})
    def get(self, request: Request, phone: str) -> Response:
        number = to_e164(phone, field="phone")
        entry = OptOut.objects.filter(phone=number).first()
        if entry is None:
            raise NotFound(f"{number} is not on the opt-out list.")
        return Response(OptOutSerializer(entry).data)

    @extend_schema(responses={204: None}, description="Opt the number in again.")
    def delete(self, request: Request, phone: str) -> Response:
        optouts.remove_opt_out(to_e164(phone, field="phone"))
        return Response(status=status.HTTP_204_NO_CONTENT)
