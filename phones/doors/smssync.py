"""The SMSSync door (docs/phones/smssync.md): raw log first, parse, identify the device, call
the pipeline, answer in SMSSync's own shape. The view only routes here.

Every answer that tells a phone "stored" is given after the transaction holding the message
committed; anything the phone sends that we cannot use is answered with SMSSync's
`success: false` (or a 4xx) and changes nothing but the raw log.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from messaging import rawlog
from messaging.inbox import InboundSMS
from messaging.models import Message, Status
from phones import checkin as checkins
from phones.answers import Answer, Outcome, record, report_state, respond
from phones.checkin import CheckIn
from phones.protocols import ProtocolError, smssync
from phones.queue import claim, dispatch_replies
from pipeline.inbound import receive
from smsgate.phones import normalize_sender, region_of

log = logging.getLogger(__name__)

SMSSYNC_POLL_LIMIT = 50
# Android result codes the SMSSync app reports: RESULT_OK is -1; the shipped app never fills
# sent_result_code, so 0 (its default) also means "sent" (docs/phones/smssync.md#task-result).
_SENT_CODES = (None, 0, -1)


# --- SMSSync ----------------------------------------------------------------------------------


def _smssync_failure(error: str, *, status: int = 200, device_id: str | None = None) -> Answer:
    return Answer(
        {"payload": {"success": False, "error": error}},
        status=status,
        outcome=Outcome.REJECTED,
        detail=error,
        device_id=device_id,
    )


def _smssync_device(request: HttpRequest, secret: str, *, lock: bool = True) -> CheckIn | None:
    """By Basic auth (`device id:token` in the Sync URL) or by the secret; both must agree.

    `lock=False` for requests that claim nothing (see checkins.check_in_by_token)."""
    basic = checkins.parse_basic_auth(request.headers.get("Authorization", ""))
    if basic is not None:
        checkin = checkins.check_in_by_token(basic[1], device_id=basic[0], lock=lock)
        if (
            checkin is not None
            and secret
            and not checkins.secret_belongs_to(checkin.device, secret)
        ):
            return None
        return checkin
    return checkins.check_in_by_secret(secret, lock=lock)


def _has_credentials(request: HttpRequest, secret: str) -> bool:
    return bool(secret) or "Authorization" in request.headers


def _smssync_incoming(request: HttpRequest, body: bytes) -> Answer:
    sms = smssync.parse_incoming(body)
    checkin = _smssync_device(request, sms.secret, lock=False)
    if checkin is None:
        return _smssync_failure("unknown device or wrong secret")
    device = checkin.device
    if sms.is_integration_test:
        return Answer(
            {"payload": {"success": True, "error": None}},
            detail="SMSSync integration test (not stored)",
            device_id=device.pk,
        )
    first_sim = checkin.sims[0] if checkin.sims else None
    metadata = {"smssync_device_id": sms.device_id} if sms.device_id else {}
    if sms.sent_timestamp and smssync.received_at(sms) is None:
        metadata["sent_timestamp"] = sms.sent_timestamp[:40]
    to_number = normalize_sender(sms.sent_to) or (first_sim.number if first_sim else "")
    inbound = InboundSMS(
        # A national sender is read in the country of the SIM that received it.
        from_number=normalize_sender(sms.from_number, region=region_of(to_number)),
        body=sms.message,
        source="smssync",
        to_number=to_number,
        received_at=smssync.received_at(sms),
        device=device,
        sim_slot=first_sim.slot if first_sim else None,
        source_id=sms.message_id,
        metadata=metadata,
    )
    [result] = receive([inbound])
    payload: dict[str, Any] = {"success": True, "error": None}
    if result.replies:
        replies = dispatch_replies(checkin, result.replies, detail="instant reply to SMSSync")
        payload["messages"] = [_smssync_message(m) for m in replies]
    return Answer(
        {"payload": payload},
        outcome=Outcome.ACCEPTED if result.created else Outcome.DUPLICATE,
        detail=f"message {result.message.pk}",
        device_id=device.pk,
    )


def _smssync_message(message: Message) -> dict[str, str]:
    # No `timestamp`: the app parses it as a java.util.Date and drops the whole list on epochs.
    return {"to": message.to_number, "message": message.body, "uuid": str(message.uuid)}


def _smssync_idle_send(request: HttpRequest, secret: str) -> Answer | None:
    """A `task=send` poll with nothing waiting, answered from one read and no transaction.
    None: take the full path (which also answers every refusal)."""
    basic = checkins.parse_basic_auth(request.headers.get("Authorization", ""))
    if basic is not None:
        checkin = checkins.idle_poll_check_in(token=basic[1], device_id=basic[0])
        if checkin is None or (secret and not checkins.secret_belongs_to(checkin.device, secret)):
            return None
    else:
        checkin = checkins.idle_poll_check_in(secret=secret)
        if checkin is None:
            return None
    return _smssync_send_answer(checkin, secret, [])


def _smssync_send_answer(checkin: CheckIn, secret: str, messages: list[Message]) -> Answer:
    return Answer(
        {
            "payload": {
                "task": "send",
                # The app compares this with its own secret and sends nothing on a mismatch; we
                # only keep a hash, so it is the secret the phone just proved it knows.
                "secret": secret,
                "messages": [_smssync_message(m) for m in messages],
            }
        },
        detail=f"{len(messages)} handed out",
        device_id=checkin.device.pk,
    )


def _smssync_send(request: HttpRequest, secret: str) -> Answer:
    checkin = _smssync_device(request, secret)
    if checkin is None:
        return _smssync_failure("unknown device or wrong secret")
    messages = claim(checkin, limit=SMSSYNC_POLL_LIMIT, detail="handed to SMSSync (task=send)")
    return _smssync_send_answer(checkin, secret, messages)


def _uuids(values: list[str]) -> list[uuidlib.UUID]:
    parsed = []
    for value in values:
        try:
            parsed.append(uuidlib.UUID(value))
        except ValueError:
            continue
    return parsed


def _smssync_sent(request: HttpRequest, body: bytes, secret: str) -> Answer:
    """The app acknowledges the uuids of a poll before sending; it carries no secret, so the
    uuids themselves (random, only ever told to the phone that polled) are the credential,
    unless the Sync URL carries Basic auth."""
    queued = smssync.parse_queued_uuids(body)
    found = Message.objects.filter(uuid__in=_uuids(queued), status=Status.DISPATCHED)
    device_id = None
    if _has_credentials(request, secret):
        checkin = _smssync_device(request, secret)
        if checkin is None:
            return _smssync_failure("unknown device or wrong secret")
        device_id = checkin.device.pk
        found = found.filter(device_id=device_id)
    dispatched = {u.hex for u in found.values_list("uuid", flat=True)}
    confirmed = [u for u in queued if any(p.hex in dispatched for p in _uuids([u]))]
    return Answer(
        {"message_uuids": confirmed},
        detail=f"{len(confirmed)} of {len(queued)} confirmed",
        device_id=device_id,
    )


def _smssync_result_poll(request: HttpRequest, secret: str) -> Answer:
    checkin = _smssync_device(request, secret)
    if checkin is None:
        return _smssync_failure("unknown device or wrong secret")
    waiting = Message.objects.filter(
        device_id=checkin.device.pk, status__in=[Status.DISPATCHED, Status.SENT]
    ).order_by("id")[:500]
    return Answer(
        {"message_uuids": [str(u) for u in waiting.values_list("uuid", flat=True)]},
        device_id=checkin.device.pk,
    )


def _smssync_results(request: HttpRequest, body: bytes, secret: str) -> Answer:
    results = smssync.parse_message_results(body)
    checkin = _smssync_device(request, secret)
    if checkin is None:
        return _smssync_failure("unknown device or wrong secret")
    by_uuid = {
        str(m.uuid): m
        for m in Message.objects.filter(
            device_id=checkin.device.pk, uuid__in=_uuids([r.uuid for r in results])
        )
    }
    applied = 0
    for result in results:
        message = by_uuid.get(result.uuid)
        if message is None:
            continue
        detail = f"SMSSync: {result.describe()}"[:500]
        if result.sent_result_code in _SENT_CODES:
            # The app repeats results on every result poll; an already sent message needs no
            # second "sent" event.
            if message.status not in (Status.SENT, Status.DELIVERED):
                applied += report_state(message, Status.SENT, detail)
        else:
            reason = result.sent_result_message or f"send failed (code {result.sent_result_code})"
            applied += report_state(message, Status.FAILED, detail, reason=reason)
        if result.delivered_result_code == -1:
            applied += report_state(message, Status.DELIVERED, detail)
    return Answer(
        {"payload": {"success": True, "error": None}},
        detail=f"{len(results)} results, {applied} changes",
        device_id=checkin.device.pk,
    )


def answer_smssync(request: HttpRequest) -> JsonResponse:
    entry, body, too_large = rawlog.log_request(request, source="smssync")
    if too_large:
        limit = rawlog.max_body_bytes()
        return respond(
            entry, _smssync_failure(f"the body is larger than {limit} bytes", status=413)
        )
    task = request.GET.get("task", "")
    secret = smssync.query_secret(request.GET.get("secret", ""))
    method = request.method or ""
    routes: dict[tuple[str, bool], Callable[[], Answer]] = {
        ("", True): lambda: _smssync_incoming(request, body),
        ("send", False): lambda: _smssync_send(request, secret),
        ("send", True): lambda: _smssync_send(request, secret),
        ("sent", True): lambda: _smssync_sent(request, body, secret),
        ("result", False): lambda: _smssync_result_poll(request, secret),
        ("result", True): lambda: _smssync_results(request, body, secret),
    }
    route = routes.get((task, method in ("POST", "PUT")))
    if route is None:
        return respond(
            entry, _smssync_failure(f"nothing to do for {method} task={task!r}", status=400)
        )
    idle = _smssync_idle_send(request, secret) if task == "send" else None
    if idle is not None:
        return respond(entry, idle)
    try:
        with transaction.atomic():
            answer = route()
            # The outcome commits with the work: one durable commit fewer per request.
            record(entry, answer)
    except ProtocolError as exc:
        answer = _smssync_failure(exc.message, status=400)
    return respond(entry, answer)
