"""Baseline views for the benchmark, mounted only when SMSGATE_BENCH_VIEWS=true.

They give the floor the real endpoints are measured against, in the same server and process
layout: what Django costs for a trivial JSON answer, and what the smallest possible ingest
costs (API-key lookup, one message INSERT and one outbox INSERT in a transaction).
"""

from __future__ import annotations

import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from messaging.models import Direction, Message, Status
from smsgate.auth import find_api_key, key_from_headers
from webhooks.models import Event, EventType


def plain_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@csrf_exempt
def bare_ingest(request: HttpRequest) -> JsonResponse:
    plaintext = key_from_headers(request.META)
    key = find_api_key(plaintext) if plaintext else None
    if key is None:
        return JsonResponse({"ok": False}, status=401)
    try:
        data = json.loads(request.body)
        sender, body = str(data["from"]), str(data["message"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"ok": False}, status=400)
    with transaction.atomic():
        message = Message.objects.create(
            direction=Direction.INBOUND,
            status=Status.RECEIVED,
            from_number=sender,
            body=body,
            source="bench",
        )
        Event.objects.create(
            type=EventType.SMS_RECEIVED,
            message=message,
            data={"messageId": message.pk, "from": sender, "body": body},
        )
    return JsonResponse({"ok": True, "id": message.pk})
