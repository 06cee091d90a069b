"""Moving a message to another line when its own cannot send it (docs/routing.md#re-routing).

Two things move a message that is not pinned:

- a `failed` report with a retryable reason (the radio was off, no service, the carrier's rate
  limit, Android's generic failure; a provider's temporary error) while it was still ours to
  send (queued or dispatched, never once `sent`): `reroute_failed`, called by
  messaging.services.record_status and the provider send task under the message's row lock;
- waiting too long on a line that does not take it (the phone went offline, is paced out, or no
  phone polls the shared queue): the `reroute_waiting` sweep, every 15 s.

The next line is the best online SIM with budget that the message has not tried yet (routing's
pool order), else the policy's fallback provider app; a message tries at most the policy's
`max_attempts` lines. A `dispatched` message without a report is never moved: the phone may
have sent it (messaging.dispatch flags it stale instead). Each move is one `rerouted` event
"<from line> → <to line>: <why>" and the `message_rerouted` signal.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging import live
from messaging.models import REROUTED, Direction, Message, MessageEvent, Status
from messaging.policy import Policy, current_policy, fallback_app
from messaging.routing import Route, describe_line, line_key, pool_route, sims_by_budget
from messaging.signals import message_rerouted

# Failure reasons that say "this line, not this message": Android's SmsManager result codes
# (by name, or "error code 1/2/4/5" as MSync and SMSSync word them), the SMS Gateway app's
# "Send result: RESULT_ERROR_…" texts, and carrier throttling. A null PDU (3) or an invalid
# destination is the message's own fault and fails for good.
_RETRYABLE = re.compile(
    r"RESULT_ERROR_(GENERIC_FAILURE|RADIO_OFF|NO_SERVICE|LIMIT_EXCEEDED|NETWORK_ERROR"
    r"|MODEM_ERROR|NO_RESOURCES|SHORT_CODE_NOT_ALLOWED|FDN_CHECK_FAILURE|SMS_SEND_RETRY_FAILED)"
    r"|generic failure|radio (is )?off|airplane mode|no service|out of service|no signal"
    r"|limit exceeded|rate limit|too many|throttl|no (sim|credit|balance)|insufficient (credit|balance|funds)"
    r"|\b(error|result) code:? *[1245]\b|temporar",
    re.IGNORECASE,
)

# Queued messages the sweep looks at per run; the rest wait for the next run.
SWEEP_BATCH = 500


def is_retryable(reason: str) -> bool:
    return bool(_RETRYABLE.search(reason))


def _current_line(message: Message) -> tuple[str, str]:
    """The message's line as a key for `lines_tried`, and in words. An SMS Gateway app phone is
    tried as a whole: the app keeps the message id it failed and would not take it again for
    its other SIM (docs/phones/sms-gateway-app.md)."""
    slot = message.sim_slot
    if message.device_id and message.device is not None and message.device.app_token_hash:
        slot = None
    return (
        line_key(message.device_id, slot, message.app_id),
        describe_line(message.device_id, message.sim_slot, message.app_id),
    )


def next_line(message: Message, policy: Policy, *, waiting: bool = False) -> Route | None:
    """The line a message should move to, or None when it has tried enough lines or no other
    line can send. `waiting`: it waits on its line (not failed there), so a paced-out SIM is
    no better than the one it has."""
    current, _ = _current_line(message)
    # "" is the shared queue, no line; a device without SIM rows is tried as a whole.
    exclude = {key for key in (*message.lines_tried, current) if key}
    if len(exclude) >= policy.max_attempts:
        return None
    route = pool_route(exclude=exclude)
    if route.device is not None and not route.paced_out:
        return route
    app = fallback_app(policy)
    if app is not None and app.pk not in exclude:
        return Route(app=app)
    if route.device is not None and not waiting:
        # Paced out, but a line that can send later beats failing now.
        return route
    return None


def _move(message: Message, route: Route, why: str) -> None:
    """Put a locked message on `route`, queued again: one event, the signal, the live update."""
    from_key, from_line = _current_line(message)
    to_line = describe_line(
        route.device.pk if route.device else None,
        route.sim_slot if route.device else None,
        route.app.pk if route.app else None,
    )
    now = timezone.now()
    if from_key and from_key not in message.lines_tried:
        message.lines_tried = [*message.lines_tried, from_key]
    message.status = Status.QUEUED
    message.device = route.device
    message.sim_slot = route.sim_slot if route.device else None
    message.app = route.app
    message.from_number = route.from_number
    message.dispatched_at = None
    message.stale = False
    message.send_attempts = 0
    message.next_attempt_at = None
    message.provider_message_id = ""
    message.routed_at = now
    message.save(
        update_fields=[
            "lines_tried",
            "status",
            "device",
            "sim_slot",
            "app",
            "from_number",
            "dispatched_at",
            "stale",
            "send_attempts",
            "next_attempt_at",
            "provider_message_id",
            "routed_at",
            "updated_at",
        ]
    )
    detail = f"{from_line} → {to_line}: {why}"
    MessageEvent.objects.create(message=message, status=REROUTED, at=now, detail=detail)
    message_rerouted.send(
        sender=Message, message=message, from_line=from_line, to_line=to_line, why=why
    )
    live.announce(message, "message.status")


def reroute_failed(
    message: Message,
    reason: str,
    *,
    retryable: bool | None = None,
    policy: Policy | None = None,
) -> bool:
    """Move a message (row locked by the caller) whose line reported `reason` to another line,
    when it is not pinned, was not sent yet, the reason is retryable (`retryable` overrides the
    reading of `reason`) and a line is left. Returns whether it moved; when not, the caller
    fails it (or retries on the same line)."""
    if retryable is None:
        retryable = is_retryable(reason)
    if (
        message.pinned
        or message.direction != Direction.OUTBOUND
        or message.status not in (Status.QUEUED, Status.DISPATCHED)
        or not retryable
        # No line to blame: it never reached one.
        or not (message.device_id or message.app_id)
    ):
        return False
    policy = policy or current_policy()
    route = next_line(message, policy)
    if route is None:
        return False
    _, from_line = _current_line(message)
    MessageEvent.objects.create(
        message=message,
        status=Status.FAILED,
        at=timezone.now(),
        detail=f"{from_line} could not send it ({reason}); trying another line",
        applied=False,
    )
    _move(message, route, f"failed ({reason})")
    return True


def _waiting_too_long(policy: Policy) -> Q:
    """Queued on a phone line or the shared queue since before the policy's reroute_after."""
    cutoff = timezone.now() - timedelta(seconds=policy.reroute_after)
    return Q(
        direction=Direction.OUTBOUND,
        status=Status.QUEUED,
        pinned=False,
        app__isnull=True,
        routed_at__lte=cutoff,
    ) & (Q(send_at__isnull=True) | Q(send_at__lte=cutoff))


def _paced_out_sims() -> set[tuple[str, int]]:
    """The online SIMs that have used a budget (day, hour or minute), read once per sweep."""
    return {(line.sim.device_id, line.sim.slot) for line in sims_by_budget() if line.paced_out}


def _stuck_because(message: Message, paced_out: set[tuple[str, int]]) -> str | None:
    """Why the line a queued message waits on will not take it, or None when it will (an
    online, enabled phone with budget takes it on its next poll, however slow its polls)."""
    device = message.device
    if device is None:
        return "no phone took it from the shared queue"
    if not device.enabled:
        return f"device {device.pk} is disabled"
    if not device.online:
        return f"device {device.pk} is offline"
    if message.sim_slot is not None and (device.pk, message.sim_slot) in paced_out:
        return f"device {device.pk} SIM {message.sim_slot} is paced out"
    return None


def reroute_one_waiting(
    message_id: str, policy: Policy, paced_out: set[tuple[str, int]] | None = None
) -> bool:
    """Move one message that waited too long, if it still does; skips a row a poll holds.
    `paced_out`: the sweep's reading of the paced-out SIMs (read here when not given)."""
    with transaction.atomic():
        # No select_related("device"): when another sweep moved the row between this
        # statement's snapshot and its lock, PostgreSQL re-checks the locked row but not its
        # join, and the device read back as None ("the shared queue"), moving it again.
        message = (
            Message.objects.select_for_update(skip_locked=True)
            .filter(_waiting_too_long(policy), pk=message_id)
            .first()
        )
        if message is None:
            return False
        why = _stuck_because(message, _paced_out_sims() if paced_out is None else paced_out)
        if why is None:
            return False
        route = next_line(message, policy, waiting=True)
        if route is None:
            return False
        _move(message, route, f"{why} for {policy.reroute_after} s or more")
    return True


def _on_stuck_lines(paced_out: set[tuple[str, int]]) -> Q:
    """Messages whose line may not take them (what `_stuck_because` checks, row by row): the
    shared queue, an offline or disabled phone, a paced-out SIM."""
    stuck = Q(device__isnull=True) | Q(device__online=False) | Q(device__enabled=False)
    for device_id, slot in paced_out:
        stuck |= Q(device_id=device_id, sim_slot=slot)
    return stuck


def reroute_waiting(policy: Policy | None = None) -> int:
    """The sweep: every unpinned message queued on a line that did not take it within the
    policy's reroute_after moves to the best line it has not tried (or stays when none)."""
    policy = policy or current_policy()
    # Only messages on lines that will not take them: a batch of the oldest queued messages
    # would otherwise fill with messages an online phone is about to take (checked one by one
    # with a pool query each, 8 s for 500 on PostgreSQL) and never reach the stranded ones.
    # The paced-out SIMs are read once for the run, not once per message.
    paced_out = _paced_out_sims()
    due = list(
        Message.objects.filter(_waiting_too_long(policy), _on_stuck_lines(paced_out))
        .order_by("routed_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sum(reroute_one_waiting(pk, policy, paced_out) for pk in due)
