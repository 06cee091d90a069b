"""`ANY /api/sms/apps/{app_id}/receive`: what cloud providers post to us (docs/providers/README.md#the-receive-url).

Thin: find the app, log the raw request, let the app's provider module verify and parse it,
hand the parsed records to the pipeline, answer in the provider's shape. Every request ends up
in the raw log with its outcome, refused or not.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from messaging import rawlog
from messaging.models import InboundRequest, ProviderApp
from pipeline import inbound, reports
from pipeline.reports import StatusReport
from providers import get_provider, services
from providers.base import Incoming, Parsed, Part, Provider, ReceiveContext, Rejected, Report
from providers.services import credentials_of
from smsgate.errors import error_response

Outcome = InboundRequest.Outcome


@csrf_exempt
def receive(request: HttpRequest, app_id: str) -> HttpResponse:
    # Finding the app first only reads one row by key; it lets the log entry name the provider.
    app = None if "\x00" in app_id else ProviderApp.objects.filter(pk=app_id[:40]).first()
    entry, body, too_large = rawlog.log_request(request, source=app.provider if app else "apps")
    if app is None or not app.enabled:
        rawlog.finish(entry, outcome=Outcome.REJECTED, status_code=404, detail="unknown app")
        return error_response(404, "not_found", f"There is no enabled provider app {app_id!r}.")
    if too_large:
        rawlog.finish(
            entry, outcome=Outcome.REJECTED, status_code=413, detail="too large", app_id=app.pk
        )
        return error_response(413, "body_too_large", "The body is too large.")
    provider = get_provider(app.provider)
    context = ReceiveContext(request=request, app=app, credentials=credentials_of(app), body=body)
    try:
        parsed = provider.parse(context)
        response, outcome, detail = _store(provider, context, parsed)
    except Rejected as exc:
        rawlog.finish(
            entry,
            outcome=Outcome.REJECTED,
            status_code=exc.status_code,
            detail=exc.message,
            app_id=app.pk,
        )
        return exc.response
    except Exception as exc:
        # A bug: keep the reason next to the raw request, then let Django report it.
        rawlog.finish(
            entry, outcome=Outcome.ERROR, status_code=500, detail=repr(exc), app_id=app.pk
        )
        raise
    rawlog.finish(
        entry, outcome=outcome, status_code=response.status_code, detail=detail, app_id=app.pk
    )
    return response


def _store(
    provider: Provider, context: ReceiveContext, parsed: Parsed
) -> tuple[HttpResponse, str, str]:
    """Hand what the provider sent to the pipeline; the answer and the raw log's outcome."""
    if isinstance(parsed, Incoming):
        app = context.app
        hand_out = (
            (lambda replies: services.take_replies_for_twiml(app, replies))
            if provider.answers_with_replies
            else None
        )
        result = inbound.receive_one(parsed.sms, hand_out=hand_out)
        response = (
            provider.answer_with_replies(context, parsed, result.replies)
            if provider.answers_with_replies
            else parsed.answer
        )
        outcome = Outcome.ACCEPTED if result.created else Outcome.DUPLICATE
        return response, outcome, f"message {result.message.pk}"
    if isinstance(parsed, Part):
        whole, duplicate = services.receive_concat_part(
            sms=parsed.sms,
            ref=parsed.ref,
            part=parsed.part,
            total=parsed.total,
            part_id=parsed.part_id,
        )
        if duplicate:
            return parsed.answer, Outcome.DUPLICATE, "part again"
        if whole is None:
            return parsed.answer, Outcome.ACCEPTED, f"part {parsed.part} of {parsed.total} stored"
        return parsed.answer, Outcome.ACCEPTED, f"message {whole.message.pk} (all parts)"
    if isinstance(parsed, Report):
        report = StatusReport(
            status=parsed.status,
            detail=parsed.detail,
            reason=parsed.reason,
            message_id=parsed.message_id,
            provider_message_id=parsed.provider_message_id,
        )
        return (
            parsed.answer,
            Outcome.ACCEPTED,
            f"{parsed.detail}: {reports.apply_report(report, app=context.app).detail}",
        )
    return parsed.answer, Outcome.ACCEPTED, parsed.detail
