"""`email`: `mailto:ops@example.org[,other@example.org]`, one email per event through Django's
mail backend (EMAIL_URL). A backend error is a failed attempt, retried like an HTTP one."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from webhooks.formats.base import FormatSpec, Outcome, Target, describe
from webhooks.models import SUBSCRIBABLE_EVENTS

MAX_RECIPIENTS = 10


def recipients(url: str) -> list[str]:
    """The addresses of a `mailto:` URL; ValueError when there are none or one is invalid."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "mailto":
        raise ValueError("An email endpoint needs a mailto: URL.")
    addresses = [unquote(a).strip() for a in parts.path.split(",") if a.strip()]
    if not addresses:
        raise ValueError("The mailto: URL names no address.")
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"At most {MAX_RECIPIENTS} addresses per endpoint.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValueError(f"{address!r} is not an email address.") from exc
    return addresses


def deliver(target: Target) -> Outcome:
    subject, text = describe(target.event)
    try:
        to = recipients(target.endpoint.url)
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)
    except (ValueError, OSError) as exc:
        # smtplib's errors are OSErrors; so are refused connections and timeouts.
        return Outcome(False, error=f"email not sent: {exc}")
    return Outcome(True, excerpt=f"sent to {', '.join(to)}")


SPEC = FormatSpec(
    name="email",
    deliver=deliver,
    events=frozenset(SUBSCRIBABLE_EVENTS),
    max_attempts=8,
    timeout=lambda: float(settings.SMSGATE_WEBHOOKS_TIMEOUT),
    schedule=lambda: list(settings.SMSGATE_WEBHOOKS_RETRY_SCHEDULE),
)
