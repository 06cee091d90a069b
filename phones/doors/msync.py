"""The MSync door (docs/phones/msync.md): raw log first, parse, identify the device, call the
pipeline, answer in MSync's JSON. The view only routes here.

Every answer that tells a phone "stored" is given after the transaction holding the message
committed; anything the phone sends that we cannot use is answered with a 4xx and changes
nothing but the raw log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from devices import services
from messaging import rawlog
from messaging.inbox import InboundSMS
from messaging.models import InboundRequest, Message
from phones import checkin as checkins
from phones.answers import Answer, Outcome, record, report_state, respond
from phones.checkin import CheckIn
from phones.protocols import ProtocolError, msync
from phones.queue import claim
from pipeline.inbound import receive
from smsgate.errors import error_body
from smsgate.phones import normalize_sender, region_of

log = logging.getLogger(__name__)

MSYNC_POLL_LIMIT = 50


# --- MSync ------------------------------------------------------------------------------------


def _msync_error(status: int, code: str, message: str, device_id: str | None = None) -> Answer:
    return Answer(
        error_body(code, message),
        status=status,
        outcome=Outcome.REJECTED,
        detail=message,
        device_id=device_id,
    )


def _msync_incoming(checkin: CheckIn, data: dict[str, Any]) -> Answer:
    numbers = {sim.slot: sim.number for sim in checkin.sims}

    def to_number(item: msync.Incoming) -> str:
        return numbers.get(item.sim_slot or 0, "")

    batch = [
        InboundSMS(
            from_number=normalize_sender(item.from_number, region=region_of(to_number(item))),
            body=item.body,
            source="msync",
            to_number=to_number(item),
            received_at=item.received_at,
            device=checkin.device,
            sim_slot=item.sim_slot,
            source_id=item.source_id,
        )
        for item in msync.parse_incoming(data)
    ]
    results = receive(batch)
    received = sum(1 for r in results if r.created)
    duplicates = len(results) - received
    return Answer(
        {"success": True, "received": received, "duplicates": duplicates},
        outcome=Outcome.ACCEPTED if received else Outcome.DUPLICATE,
        detail=f"{received} received, {duplicates} duplicates",
    )


def _msync_idle_poll(token: str, data: dict[str, Any]) -> Answer | None:
    """An `outgoing` poll with nothing waiting, answered from one read and no transaction (the
    commonest call of all: an idle phone polls every few seconds). None: take the full path."""
    if data.get("action") != "outgoing":
        return None
    try:
        msync.parse_limit(data, MSYNC_POLL_LIMIT)
    except ProtocolError:
        return None  # refused on the full path, after the check-in, as always
    checkin = checkins.idle_poll_check_in(token=token)
    if checkin is None or data.get("device_id") != checkin.device.pk:
        return None
    return Answer({"messages": []}, detail="0 handed out", device_id=checkin.device.pk)


def _msync_outgoing(checkin: CheckIn, data: dict[str, Any]) -> Answer:
    limit = msync.parse_limit(data, MSYNC_POLL_LIMIT)
    messages = claim(checkin, limit=limit, detail="handed to MSync (outgoing)")
    return Answer(
        {
            "messages": [
                {
                    "id": m.pk,
                    "to": m.to_number,
                    "message": m.body,
                    "uuid": str(m.uuid),
                    "sim_slot": m.sim_slot,
                }
                for m in messages
            ]
        },
        detail=f"{len(messages)} handed out",
    )


def _msync_status(checkin: CheckIn, data: dict[str, Any]) -> Answer:
    services.update_health(device=checkin.device, values=msync.parse_status(data))
    return Answer({"success": True})


def _msync_location(checkin: CheckIn, data: dict[str, Any]) -> Answer:
    latitude, longitude, accuracy = msync.parse_location(data)
    services.update_location(
        device=checkin.device, latitude=latitude, longitude=longitude, accuracy=accuracy
    )
    return Answer({"success": True})


def _msync_delivery(checkin: CheckIn, data: dict[str, Any]) -> Answer:
    reports = msync.parse_delivery(data)
    messages = {m.uuid: m for m in Message.objects.filter(uuid__in=[r.uuid for r in reports])}
    if any(m.device_id != checkin.device.pk for m in messages.values()):
        return _msync_error(403, "permission_denied", "A report names a message of another device.")
    updated = 0
    for report in reports:
        message = messages.get(report.uuid)
        if message is None:
            continue
        updated += report_state(
            message,
            report.status,
            f"MSync report{': ' + report.error if report.error else ''}",
            reason=report.error,
            at=report.at,
        )
    return Answer({"success": True, "updated": updated}, detail=f"{updated} updated")


_MSYNC_ACTIONS: dict[str, Callable[[CheckIn, dict[str, Any]], Answer]] = {
    "incoming": _msync_incoming,
    "outgoing": _msync_outgoing,
    "status": _msync_status,
    "location": _msync_location,
    "delivery": _msync_delivery,
}


def _bearer(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _msync_answer(request: HttpRequest, body: bytes, entry: InboundRequest) -> Answer:
    data = msync.parse_body(body)
    token = _bearer(request)
    if not token:
        return _msync_error(401, "not_authenticated", "Send the device token as a Bearer token.")
    idle = _msync_idle_poll(token, data)
    if idle is not None:
        return idle
    with transaction.atomic():
        answer = _msync_checked_in(token, data)
        # The outcome commits with the work (nothing is written here when the action failed
        # and the transaction is rolling back; _respond records it after).
        record(entry, answer)
    return answer


def _msync_checked_in(token: str, data: dict[str, Any]) -> Answer:
    """Inside the request's transaction: the device's check-in, then the action. Only a poll
    for outgoing messages claims, so only it keeps the device row locked."""
    checkin = checkins.check_in_by_token(token, lock=data.get("action") == "outgoing")
    if checkin is None:
        return _msync_error(401, "not_authenticated", "The device token is not valid.")
    device_id = checkin.device.pk
    if data.get("device_id") != device_id:
        return _msync_error(
            403,
            "permission_denied",
            "`device_id` must be the id of the device this token belongs to.",
            device_id,
        )
    action = _MSYNC_ACTIONS.get(data.get("action") or "")
    if action is None:
        return _msync_error(
            400,
            "unknown_action",
            "`action` must be one of " + ", ".join(msync.ACTIONS) + ".",
            device_id,
        )
    try:
        with transaction.atomic(savepoint=False):
            answer = action(checkin, data)
    except ProtocolError as exc:
        return _msync_error(400, "invalid", exc.message, device_id)
    answer.device_id = device_id
    return answer


def answer_msync(request: HttpRequest) -> JsonResponse:
    entry, body, too_large = rawlog.log_request(request, source="msync")
    if request.method != "POST":
        answer = _msync_error(405, "method_not_allowed", "MSync takes POST requests only.")
    elif too_large:
        answer = _msync_error(
            413, "body_too_large", f"The body is larger than {rawlog.max_body_bytes()} bytes."
        )
    else:
        try:
            answer = _msync_answer(request, body, entry)
        except ProtocolError as exc:
            answer = _msync_error(400, "invalid", exc.message)
    response = respond(entry, answer)
    if answer.status == 405:
        response["Allow"] = "POST"
    return response
