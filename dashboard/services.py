"""State changes started from the dashboard that are the dashboard's own: reading a thread
(with its live announcement) and broadcasts. Everything else calls the owning app's services.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from dashboard.models import Broadcast
from messaging import services as messaging
from messaging.conversations import mark_conversation_read
from messaging.live import broadcast_inbox
from messaging.models import OptOut
from messaging.quiet import HeldSummary, summarize_holds
from smsgate.errors import DomainError, InvalidInput
from smsgate.phones import to_e164

MAX_BROADCAST_RECIPIENTS = messaging.MAX_BULK_RECIPIENTS
# Raw entries accepted before parsing (room for duplicates and opt-outs in a pasted list).
MAX_BROADCAST_ENTRIES = 5 * MAX_BROADCAST_RECIPIENTS
_SEPARATORS = re.compile(r"[\s,;]+")
_PHONE_COLUMNS = ("phone", "number", "to", "mobile", "msisdn", "recipient")


def open_conversation(*, conversation_id: str) -> None:
    """Mark a thread read and tell the other open pages, so their unread counts drop too."""
    with transaction.atomic():
        mark_conversation_read(conversation_id=conversation_id)
        transaction.on_commit(
            lambda: broadcast_inbox("conversation.read", {"conversation_id": conversation_id})
        )


# --- broadcasts -------------------------------------------------------------------------------


@dataclass
class BroadcastPlan:
    """Who a broadcast will reach and who was left out, before anything is sent."""

    recipients: list[str] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)
    duplicates: int = 0
    # Who quiet hours would hold if it were sent now (None: no quiet hours, or not respected).
    quiet: HeldSummary | None = None

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.invalid + [
            {"to": p, "code": "recipient_opted_out", "message": "Opted out: removed."}
            for p in self.opted_out
        ]


def parse_recipients(*, pasted: str = "", csv_text: str = "") -> list[str]:
    """Raw entries from a pasted list (one per line, or comma/semicolon separated) and a CSV
    file (the column named phone/number/to…, else the first column)."""
    # NUL cannot be stored in PostgreSQL text or JSON (an uploaded file may contain it).
    pasted, csv_text = pasted.replace("\x00", ""), csv_text.replace("\x00", "")
    entries = [e for e in _SEPARATORS.split(pasted) if e]
    if csv_text:
        try:
            rows = list(csv.reader(io.StringIO(csv_text)))
        except csv.Error as exc:
            raise InvalidInput("csv", f"The CSV file could not be read: {exc}.") from None
        if rows:
            header = [c.strip().lower() for c in rows[0]]
            column = next((header.index(c) for c in _PHONE_COLUMNS if c in header), None)
            if column is None:
                column, body = 0, rows
            else:
                body = rows[1:]
            entries.extend(r[column].strip() for r in body if len(r) > column and r[column].strip())
    return entries


def plan_broadcast(entries: list[str], *, respect_quiet_hours: bool = False) -> BroadcastPlan:
    if len(entries) > MAX_BROADCAST_ENTRIES:
        # Checked before parsing: each number costs a phonenumbers parse.
        raise InvalidInput(
            "recipients", f"At most {MAX_BROADCAST_RECIPIENTS} recipients per broadcast."
        )
    plan = BroadcastPlan()
    seen: set[str] = set()
    for raw in entries:
        try:
            phone = to_e164(raw, field="to")
        except DomainError as exc:
            plan.invalid.append({"to": raw[:40], "code": exc.code, "message": exc.message})
            continue
        if phone in seen:
            plan.duplicates += 1
            continue
        seen.add(phone)
        if OptOut.lists(phone):
            plan.opted_out.append(phone)
        else:
            plan.recipients.append(phone)
    if len(plan.recipients) > MAX_BROADCAST_RECIPIENTS:
        raise InvalidInput(
            "recipients", f"At most {MAX_BROADCAST_RECIPIENTS} recipients per broadcast."
        )
    if respect_quiet_hours:
        plan.quiet = summarize_holds(plan.recipients)
    return plan


def run_broadcast(
    *, entries: list[str], body: str, user: Any, respect_quiet_hours: bool = True
) -> Broadcast:
    """Send `body` to every recipient that is valid and not opted out, as one broadcast.

    The plan is made again here, so a number that opted out between preview and send is still
    left out; a recipient the messaging service refuses is recorded as skipped, not fatal.
    Broadcasts respect quiet hours unless told not to: a recipient whose local time is in the
    policy's window gets the message when it ends.
    """
    messaging.validate_body(body)
    plan = plan_broadcast(entries)
    if not plan.recipients:
        raise InvalidInput("recipients", "There is no recipient left to send to.")
    with transaction.atomic():
        broadcast = Broadcast.objects.create(body=body, created_by=user, skipped=plan.skipped)
        results = messaging.send_bulk(
            recipients=plan.recipients,
            body=body,
            source="dashboard",
            metadata={"broadcast_id": broadcast.pk},
            respect_quiet_hours=respect_quiet_hours,
        )
        refused = [
            {"to": r.to, "code": r.error.code, "message": r.error.message}
            for r in results
            if r.error is not None
        ]
        if refused:
            broadcast.skipped = plan.skipped + refused
            broadcast.save(update_fields=["skipped"])
        broadcast.messages.add(*[r.message for r in results if r.message is not None])
    return broadcast


# --- dashboard logins -------------------------------------------------------------------------


def create_login(*, username: str, password: str, email: str = "", admin: bool = False) -> Any:
    """A dashboard login: admin (superuser) or staff (any other active user)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    users = get_user_model()
    username = username.strip()
    if not username or len(username) > 150:
        raise InvalidInput("username", "Give a username of at most 150 characters.")
    try:
        validate_password(password, users(username=username, email=email))
    except ValidationError as exc:
        raise InvalidInput("password", " ".join(exc.messages)) from None
    with transaction.atomic():
        if users.objects.filter(username__iexact=username).exists():
            raise InvalidInput("username", f"There is already a login named {username!r}.")
        if admin:
            return users.objects.create_superuser(username=username, email=email, password=password)
        return users.objects.create_user(username=username, email=email, password=password)


def set_login_active(*, user_id: int, active: bool, acting_user: Any) -> Any:
    """Deactivate (or reactivate) a login; an admin cannot lock themselves out.

    An inactive user's session stops working at its next request (Django's auth backend no
    longer returns the user), and a new websocket is refused.
    """
    from django.contrib.auth import get_user_model

    if user_id == acting_user.pk and not active:
        raise InvalidInput("user", "You cannot deactivate your own login.")
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise InvalidInput("user", "There is no such login.")
        user.is_active = active
        user.save(update_fields=["is_active"])
    return user
