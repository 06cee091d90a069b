"""What every phone door shares: the answer and the raw log's record of it, and reporting a
message's state through the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from django.http import JsonResponse

from messaging import rawlog
from messaging.models import InboundRequest, Message
from pipeline.reports import StatusReport, apply_report

Outcome = InboundRequest.Outcome


class Answer:
    """A response plus what the raw log should say about it."""

    def __init__(
        self,
        body: dict[str, Any],
        *,
        status: int = 200,
        outcome: str = Outcome.ACCEPTED,
        detail: str = "",
        device_id: str | None = None,
    ) -> None:
        self.body, self.status, self.outcome = body, status, outcome
        self.detail, self.device_id = detail, device_id


class Recorded(Protocol):
    """What the raw log keeps of any phone door's answer (Answer here, the app door's Reply)."""

    status: int
    outcome: str
    detail: str
    device_id: str | None


def record(entry: InboundRequest, answer: Recorded) -> None:
    rawlog.finish(
        entry,
        outcome=answer.outcome,
        status_code=answer.status,
        detail=answer.detail,
        device_id=answer.device_id,
    )


def respond(entry: InboundRequest, answer: Answer) -> JsonResponse:
    # Writes nothing when the work's transaction already committed this outcome (_record).
    record(entry, answer)
    return JsonResponse(answer.body, status=answer.status)


def report_state(
    message: Message, status: str, detail: str, *, reason: str = "", at: datetime | None = None
) -> bool:
    report = StatusReport(status=status, detail=detail, reason=reason, at=at, message_id=message.pk)
    return apply_report(report).applied
