"""Phone numbers at the boundary: everything is stored as E.164 (docs/api.md#phone-numbers)."""

from __future__ import annotations

import phonenumbers
from django.conf import settings

from smsgate.errors import InvalidInput


def to_e164(raw: str, *, field: str = "to") -> str:
    """Parse what an integrator typed into E.164, or raise a 400 naming the field.

    National input is only accepted when SMSGATE_DEFAULT_REGION says which country it is from.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidInput(field, "A phone number is required.")
    try:
        number = phonenumbers.parse(text, settings.SMSGATE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        hint = (
            ""
            if settings.SMSGATE_DEFAULT_REGION
            else " Use international format with a leading + (E.164)."
        )
        raise InvalidInput(field, f"{text!r} is not a phone number.{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(field, f"{text!r} is not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Conversations and opt-outs key on the sender in a 32-character column. Real senders are at
# most 15 digits or an 11-character sender id, so a longer one is junk a phone or provider sent;
# it is cut to fit (the raw inbound log keeps what was sent) rather than failing the insert.
MAX_SENDER_LENGTH = 32


def normalize_sender(raw: str, *, region: str | None = None) -> str:
    """Best-effort E.164 for numbers phones and providers report; anything else kept as sent.

    Phones report national numbers and alphanumeric sender ids ("MPESA"); an inbound message is
    never refused because of its sender, so what cannot be parsed is stored verbatim.
    Vonage sends international digits without '+', which callers prefix before calling.
    """
    text = (raw or "").strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region or settings.SMSGATE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return text[:MAX_SENDER_LENGTH]
    if not phonenumbers.is_possible_number(number):
        return text[:MAX_SENDER_LENGTH]
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
