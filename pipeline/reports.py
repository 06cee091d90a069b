"""What phones and providers report about messages we sent: one service, explicit steps.

door (parsed report) ─> apply_report():
    1. find our message: by our id, or by the provider's id on that app
    2. remember the provider's id when the report is the first to tell it
    3. apply the status, never backwards (an event either way)          messaging.services
       → the status webhook event and the live update follow from the change
         (messaging's `message_status_changed` plug-in point, messaging.live)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from messaging.models import Direction, Message, ProviderApp, Status
from messaging.services import record_status
from smsgate.errors import NotFound


@dataclass(frozen=True)
class StatusReport:
    status: str | None  # an smsgate status; None for a state we do not map (logged only)
    detail: str
    reason: str = ""  # kept for failures
    at: datetime | None = None
    message_id: str = ""  # ours (phones, providers that echo it)
    provider_message_id: str = ""  # the provider's id (with `app`)


@dataclass(frozen=True)
class ReportResult:
    applied: bool  # the status moved (False: unknown message, unmapped state, or backwards)
    detail: str  # what happened, for the raw log


def apply_report(report: StatusReport, *, app: ProviderApp | None = None) -> ReportResult:
    """Apply one report from a phone (our message id) or from a provider `app`."""
    if app is None:
        # A phone names our message, which its door already found on that phone.
        message_id = report.message_id[:40]
    else:
        found = _find_on_app(report, app)
        if found is None:
            detail = f"no outbound message with provider id {report.provider_message_id!r}"
            return ReportResult(False, detail)
        message_id = found.pk
    if report.status is None:
        return ReportResult(False, f"nothing to apply to {message_id}")
    try:
        applied = record_status(
            message_id=message_id,
            status=report.status,
            detail=report.detail,
            reason=report.reason if report.status == Status.FAILED else "",
            at=report.at,
        )
    except NotFound:
        return ReportResult(False, f"no message {message_id!r}")
    verb = "applied to" if applied else "recorded, not applied to"
    return ReportResult(applied, f"{verb} {message_id}")


def _find_on_app(report: StatusReport, app: ProviderApp) -> Message | None:
    # A provider's report can arrive before the send task stored the provider's id, so our
    # own id (echoed in the callback URL or client-ref) is the second way in.
    outbound = Message.objects.filter(app=app, direction=Direction.OUTBOUND)
    provider_id = report.provider_message_id[:100]
    message = outbound.filter(provider_message_id=provider_id).first() if provider_id else None
    if message is None and report.message_id:
        message = outbound.filter(pk=report.message_id[:40]).first()
        if message is not None and provider_id and not message.provider_message_id:
            Message.objects.filter(pk=message.pk, provider_message_id="").update(
                provider_message_id=provider_id
            )
    return message
