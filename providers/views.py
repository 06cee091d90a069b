"""`ANY /api/sms/apps/{app_id}/receive`: what cloud providers post to us (docs/providers/README.md#the-receive-url).

Thin: find the app, log the raw request, hand it to the app's provider module, answer in the
provider's shape. Every request ends up in the raw log with its outcome, refused or not.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from messaging import rawlog
from messaging.models import InboundRequest, ProviderApp
from providers import get_provider
from providers.base import ReceiveContext, Rejected
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
        received = provider.receive(context)
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
        entry,
        outcome=received.outcome,
        status_code=received.response.status_code,
        detail=received.detail,
        app_id=app.pk,
    )
    return received.response
