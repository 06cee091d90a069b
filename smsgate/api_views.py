"""API keys over the REST API (admin only): create (shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from smsgate import services
from smsgate.errors import NotFound
from smsgate.models import APIKey, Role


class APIKeySerializer(serializers.ModelSerializer):
    prefix = serializers.SerializerMethodField()

    class Meta:
        model = APIKey
        fields = ["id", "name", "role", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_prefix(self, key: APIKey) -> str:
        return f"sg_{key.prefix}_"


class APIKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.values, default=Role.ADMIN)


class APIKeyCreatedSerializer(APIKeySerializer):
    key = serializers.CharField(help_text="The key itself; shown only in this response.")

    class Meta(APIKeySerializer.Meta):
        fields = [*APIKeySerializer.Meta.fields, "key"]


class APIKeysView(ListAPIView):
    serializer_class = APIKeySerializer
    queryset = APIKey.objects.all()

    @extend_schema(request=APIKeyCreateSerializer, responses={201: APIKeyCreatedSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = APIKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.create_api_key(**serializer.validated_data)
        body = dict(APIKeySerializer(issued.api_key).data, key=issued.plaintext)
        return Response(body, status=status.HTTP_201_CREATED)


class APIKeyRevokeView(APIView):
    @extend_schema(request=None, responses={200: APIKeySerializer})
    def delete(self, request: Request, pk: str) -> Response:
        if not APIKey.objects.filter(pk=pk).exists():
            raise NotFound(f"There is no API key {pk!r}.")
        return Response(APIKeySerializer(services.revoke_api_key(key_id=pk)).data)
