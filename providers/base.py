"""The interface every cloud provider module implements, and what they share.

A provider module knows one provider's wire formats: which credentials an app needs, how to
read (and verify) what the provider posts to `/api/sms/apps/{app_id}/receive`, and how to send
a message through the provider's REST API. Storing is the pipeline's (`pipeline.inbound`,
`pipeline.reports`), called by the door in providers/views.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse

from messaging.inbox import InboundSMS
from messaging.models import InboundRequest, Message, ProviderApp
from smsgate import http, jsonbody
from smsgate.errors import DomainError, error_response
from smsgate.phones import normalize_sender

Outcome = InboundRequest.Outcome


# --- receiving --------------------------------------------------------------------------------


@dataclass
class ReceiveContext:
    request: HttpRequest
    app: ProviderApp
    credentials: dict[str, str]
    body: bytes


@dataclass
class Incoming:
    """An SMS the provider delivered to one of the app's numbers."""

    sms: InboundSMS
    answer: HttpResponse = field(default_factory=lambda: text_response(""))


@dataclass
class Part:
    """One part of a long SMS the provider delivers in pieces (Vonage binary concat)."""

    sms: InboundSMS
    ref: str
    part: int
    total: int
    part_id: str
    answer: HttpResponse = field(default_factory=lambda: text_response(""))


@dataclass
class Report:
    """What the provider says about a message we sent through it."""

    provider_message_id: str
    status: str | None  # None: a state we do not map (recorded in the raw log only)
    detail: str
    reason: str = ""
    message_id: str = ""  # ours, when the provider echoes it (callback query, client-ref)
    answer: HttpResponse = field(default_factory=lambda: text_response(""))


@dataclass
class Ignored:
    """A request with nothing to store (a provider dashboard checking the URL)."""

    detail: str
    answer: HttpResponse = field(default_factory=lambda: text_response(""))


Parsed = Incoming | Part | Report | Ignored


class Rejected(Exception):
    """The request is refused; nothing was stored except the raw log entry."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        response: HttpResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.response = response or error_response(status_code, code, message)


def without_nul(params: Mapping[str, str]) -> dict[str, str]:
    """PostgreSQL text cannot hold NUL: one in what a provider sent becomes U+FFFD (the raw
    log keeps the original bytes)."""
    return {k.replace("\x00", "\ufffd"): v.replace("\x00", "\ufffd") for k, v in params.items()}


def read_params(request: HttpRequest, body: bytes) -> dict[str, str]:
    """The parameters of a GET query, a form POST or a flat JSON object, as strings.

    Providers differ in how they send (Vonage offers all three), so every shape is accepted;
    anything else is a 400. A repeated key keeps its last value.
    """
    return without_nul(_read_params(request, body))


def _read_params(request: HttpRequest, body: bytes) -> dict[str, str]:
    if request.method == "GET":
        return request.GET.dict()
    if request.method != "POST":
        raise Rejected(405, "method_not_allowed", "Use GET or POST.")
    content_type = (request.content_type or "").lower()
    if content_type == "application/json" or (
        not content_type.startswith(("application/x-www-form", "multipart/"))
        and body.lstrip()[:1] == b"{"
    ):
        return _json_params(body)
    try:
        params = request.POST.dict()
    except Exception as exc:
        raise Rejected(400, "invalid_body", f"The form body cannot be read: {exc}") from None
    if not params and not body.strip():
        # A POST with the parameters in the query string (some dashboards' "POST" does that).
        return request.GET.dict()
    return params


def _json_params(body: bytes) -> dict[str, str]:
    try:
        parsed = jsonbody.loads(body.decode("utf-8"))
    except jsonbody.TooDeep as exc:
        raise Rejected(400, "invalid_json", str(exc)) from None
    except (UnicodeDecodeError, ValueError):
        raise Rejected(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise Rejected(400, "invalid_json", "The JSON body must be an object.")
    params: dict[str, str] = {}
    for key, value in parsed.items():
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            params[key] = str(value)
        elif value is None:
            params[key] = ""
        else:
            raise Rejected(400, "invalid_json", f"{key!r} must be a string or a number.")
    return params


def form_params(request: HttpRequest) -> QueryDict:
    """The POST parameters as a QueryDict (repeated keys kept, as Twilio signs them)."""
    try:
        return request.POST
    except Exception as exc:
        raise Rejected(400, "invalid_body", f"The form body cannot be read: {exc}") from None


def provider_number(raw: str, *, region: str | None = None) -> str:
    """E.164 for a number as a provider sends it. Vonage and some others omit the '+' of
    international numbers; a national one (leading 0) is read in `region` (the country of the
    number that received it), else SMSGATE_DEFAULT_REGION."""
    text = (raw or "").strip()
    if text.isdigit() and len(text) > 8 and not text.startswith("0"):
        text = "+" + text
    return normalize_sender(text, region=region)


def parse_timestamp(raw: str, formats: tuple[str, ...] = ()) -> datetime | None:
    """A provider's timestamp as an aware UTC datetime, or None when it cannot be read."""
    text = (raw or "").strip()
    if not text:
        return None
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def xml_response(content: str) -> HttpResponse:
    return HttpResponse(content, content_type="text/xml")


def text_response(content: str, status: int = 200) -> HttpResponse:
    return HttpResponse(content, status=status, content_type="text/plain")


# --- sending ----------------------------------------------------------------------------------


class SendError(Exception):
    permanent: ClassVar[bool] = True

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """The provider refused the message; sending it again would fail the same way."""

    permanent = True


class TemporarySendError(SendError):
    """The provider could not take it now (5xx, 429, timeout): try again later."""

    permanent = False


@dataclass
class SendResult:
    provider_message_id: str
    detail: str = ""


@dataclass
class SendRequest:
    app: ProviderApp
    credentials: dict[str, str]
    message: Message
    # Where the provider should report the message's status; None without SMSGATE_PUBLIC_URL.
    callback_url: str | None


def require(credentials: dict[str, str], *keys: str) -> list[str]:
    """The credentials a send needs; an app saved without them cannot send (permanent)."""
    missing = [key for key in keys if not credentials.get(key)]
    if missing:
        raise PermanentSendError(f"The app has no {', '.join(missing)} credential.")
    return [credentials[key] for key in keys]


def call_api(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> requests.Response:
    """One request to a provider's API through the one outbound HTTP client."""
    try:
        return http.send(method, url, headers=headers, data=data, auth=auth, timeout=timeout)
    except http.UnsafeDestination as exc:
        # The API URL comes from settings: a refused address is a configuration error that
        # will not go away by retrying.
        raise PermanentSendError(str(exc)) from exc
    except http.OutboundError as exc:
        raise TemporarySendError(str(exc)) from exc


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(response: requests.Response, reason: str) -> SendError:
    """Temporary for 5xx, 408 and 429 (the provider may take it later), else permanent."""
    code = response.status_code
    if code >= 500 or code in (408, 425, 429):
        return TemporarySendError(reason, retry_after=retry_after_seconds(response))
    return PermanentSendError(reason)


def response_json(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = jsonbody.loads(response.content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def excerpt(response: requests.Response, limit: int = 200) -> str:
    return response.text[:limit].strip()


# --- the interface ----------------------------------------------------------------------------


class Provider(ABC):
    """One provider. Credentials come in two groups: what reading the provider's requests needs
    (always required) and what sending needs (all or none: an app saved without them only
    receives, and routing never sends through it)."""

    name: ClassVar[str]
    label: ClassVar[str]
    inbound_credentials: ClassVar[tuple[str, ...]] = ()
    send_credentials: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    # False for a provider whose sending API is not implemented: its apps only receive.
    sends: ClassVar[bool] = True

    def can_send(self, credentials: Mapping[str, str]) -> bool:
        """Whether an app with these credentials can send messages."""
        return self.sends and all(credentials.get(key) for key in self.send_credentials)

    def validate_credentials(self, credentials: Any) -> dict[str, str]:
        """The credentials to store, or a 400 naming each bad key."""
        if not isinstance(credentials, dict):
            raise DomainError(
                "credentials must be an object.", fields={"credentials": ["Must be an object."]}
            )
        errors: dict[str, list[str]] = {}
        allowed = (
            *dict.fromkeys((*self.inbound_credentials, *self.send_credentials)),
            *self.optional_credentials,
        )
        cleaned: dict[str, str] = {}
        for key, value in credentials.items():
            if key not in allowed:
                errors[key] = [
                    f"Unknown credential for {self.label}; expected {', '.join(allowed)}."
                ]
            elif value is None or value == "":
                continue
            elif not isinstance(value, str) or len(value) > 500:
                errors[key] = ["Must be a string of at most 500 characters."]
            else:
                cleaned[key] = value.strip()
        for key in self.inbound_credentials:
            if key not in cleaned and key not in errors:
                errors[key] = ["This credential is required."]
        given = [
            key
            for key in self.send_credentials
            if key not in self.inbound_credentials and (key in cleaned or key in errors)
        ]
        if given and self.sends:
            for key in self.send_credentials:
                if key not in cleaned and key not in errors:
                    errors[key] = [
                        f"Sending needs {', '.join(self.send_credentials)}; leave them all "
                        "out for an app that only receives."
                    ]
        errors.update(self.check_credentials(cleaned))
        if errors:
            first = next(iter(errors))
            raise DomainError(
                f"The {self.label} credentials are not valid: {first}: {errors[first][0]}",
                fields={"credentials": errors},
            )
        return cleaned

    def check_credentials(self, credentials: dict[str, str]) -> dict[str, list[str]]:
        """Provider-specific checks beyond presence; returns errors by key."""
        return {}

    # Whether the provider takes replies in its answer to an inbound SMS (TwiML): the door
    # then hands automation's replies out in `answer_with_replies` instead of sending them.
    answers_with_replies: ClassVar[bool] = False

    @abstractmethod
    def parse(self, context: ReceiveContext) -> Parsed:
        """Verify and read one request the provider sent; raise Rejected to refuse it.
        Parsing only: storing is the pipeline's (providers/views.py)."""

    def answer_with_replies(
        self, context: ReceiveContext, incoming: Incoming, replies: list[Message]
    ) -> HttpResponse:
        return incoming.answer

    def send(self, request: SendRequest) -> SendResult:
        raise PermanentSendError(f"Sending through {self.label} is not supported.")

    def callback_url(self, app: ProviderApp, message: Message) -> str | None:
        """Where the provider should post this message's status, if we can tell it."""
        base = receive_url(app)
        return base or None


def receive_url(app: ProviderApp, request: HttpRequest | None = None) -> str:
    """The public receive URL of an app ('' when neither SMSGATE_PUBLIC_URL nor a request says
    which host the outside world uses)."""
    path = reverse("provider-receive", args=[app.pk])
    if settings.SMSGATE_PUBLIC_URL:
        return settings.SMSGATE_PUBLIC_URL + path
    if request is not None:
        return request.build_absolute_uri(path)
    return ""
