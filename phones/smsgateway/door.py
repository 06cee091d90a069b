"""What every call of the app goes through: the raw log first, the device token, the answer
in the app's shape (JSON, `{"message"}` on errors) and the raw log's outcome.
docs/phones/sms-gateway-app.md"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from messaging import rawlog
from messaging.models import InboundRequest
from phones import checkin as checkins
from phones.answers import record
from phones.checkin import CheckIn
from phones.smsgateway.wire import WireError

SOURCE = "smsgateway"
Outcome = InboundRequest.Outcome


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # None: no body (204)
    outcome: str = Outcome.ACCEPTED
    detail: str = ""
    device_id: str | None = None


def refuse(status: int, message: str, device_id: str | None = None) -> Reply:
    # The Go server's error body; the app only looks at the status.
    return Reply(status, {"message": message}, Outcome.REJECTED, message, device_id)


def bearer(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def check_in(request: HttpRequest, *, lock: bool = False) -> CheckIn | None:
    """The device whose token the call carries, recorded as seen (every call is a heartbeat)."""
    return checkins.check_in_by_app_token(bearer(request), lock=lock)


_USER_AGENT = re.compile(r"^me\.capcom\.smsgateway[\w.]*/(\S{1,60})")


def app_version(request: HttpRequest) -> str:
    """`me.capcom.smsgateway/1.68.0` (the app's Ktor UserAgent; builds with another
    application id add a suffix to the name) → `1.68.0`."""
    match = _USER_AGENT.match(request.headers.get("User-Agent", ""))
    return match.group(1) if match else ""


def _render(reply: Reply) -> HttpResponse:
    if reply.body is None:
        return HttpResponse(status=reply.status, content_type="application/json")
    return JsonResponse(reply.body, status=reply.status, safe=False)


Handler = Callable[[HttpRequest, bytes], Reply]


def serve(request: HttpRequest, handlers: dict[str, Handler]) -> HttpResponse:
    """Log, route by method, answer. Bad input is a 4xx that changes nothing but the log."""
    entry, body, too_large = rawlog.log_request(request, source=SOURCE)
    handler = handlers.get(request.method or "")
    if handler is None:
        reply = refuse(405, f"{request.method} is not allowed here.")
    elif too_large:
        reply = refuse(413, f"The body is larger than {rawlog.max_body_bytes()} bytes.")
    else:
        try:
            reply = handler(request, body)
        except WireError as exc:
            reply = refuse(400, exc.message)
    record(entry, reply)
    response = _render(reply)
    if reply.status == 405:
        response["Allow"] = ", ".join(handlers)
    return response
