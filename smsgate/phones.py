"""Phone numbers at the boundary: everything is stored as E.164 (docs/api.md#phone-numbers)."""

from __future__ import annotations

import phonenumbers
from django.conf import settings

from smsgate.errors import InvalidInput

_TOO_SHORT = "it has too few digits"
_TOO_LONG = "it has too many digits"
_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "its country calling code is unknown",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "it is not made of digits",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: _TOO_SHORT,
    phonenumbers.NumberParseException.TOO_SHORT_NSN: _TOO_SHORT,
    phonenumbers.NumberParseException.TOO_LONG: _TOO_LONG,
}
_POSSIBILITY_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "its country calling code is unknown",
    phonenumbers.ValidationResult.TOO_SHORT: _TOO_SHORT,
    phonenumbers.ValidationResult.TOO_LONG: _TOO_LONG,
    phonenumbers.ValidationResult.INVALID_LENGTH: "no number in its country has that many digits",
}


def example_number(country_code: int | None = None) -> str:
    """A valid number in E.164 to show next to a refusal: one of the number's own country when
    known, else of SMSGATE_DEFAULT_REGION, else of the US."""
    region = settings.SMSGATE_DEFAULT_REGION or "US"
    if country_code:
        region = phonenumbers.region_code_for_country_code(country_code)
    example = phonenumbers.example_number(region) if region != "ZZ" else None
    if example is None:
        example = phonenumbers.example_number("US")
    assert example is not None  # phonenumbers ships an example for every region
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def to_e164(raw: str, *, field: str = "to") -> str:
    """Parse what an integrator typed into E.164, or raise a 400 naming the field, saying why
    the number was refused and showing one that would be accepted.

    National input is only accepted when SMSGATE_DEFAULT_REGION says which country it is from.
    Numbers are checked for a possible length in their country, not against the allocated
    ranges, so test numbers such as +15551234567 are accepted.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidInput(field, "A phone number is required.")
    try:
        number = phonenumbers.parse(text, settings.SMSGATE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and not (
            settings.SMSGATE_DEFAULT_REGION or text.startswith(("+", "00"))
        ):
            why = (
                "it has no country code: use international format with a leading +"
                " (E.164), or set SMSGATE_DEFAULT_REGION for national numbers"
            )
        else:
            why = _PARSE_REASONS.get(exc.error_type, "it cannot be read as one")
        raise InvalidInput(
            field, f"{text!r} is not a phone number: {why}. Example: {example_number()}."
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason not in (
        phonenumbers.ValidationResult.IS_POSSIBLE,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ):
        why = _POSSIBILITY_REASONS.get(reason, "it is not possible in its country")
        example = example_number(number.country_code)
        raise InvalidInput(
            field,
            f"{text!r} is not a possible phone number: {why} "
            f"(+{number.country_code} numbers look like {example}).",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Conversations and opt-outs key on the sender in a 32-character column. Real senders are at
# most 15 digits or an 11-character sender id, so a longer one is junk a phone or provider sent;
# it is cut to fit (the raw inbound log keeps what was sent) rather than failing the insert.
MAX_SENDER_LENGTH = 32


# What a number may be written with; a sender with any other character (a letter) is a sender id
# such as a bank's "MPESA", kept as sent and never replied to.
_NUMBER_CHARACTERS = frozenset("0123456789+-(). ")


def _valid(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(number: str) -> str | None:
    """The country (ISO 3166 code) an E.164 number belongs to, or None."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def normalize_sender(raw: str, *, region: str | None = None) -> str:
    """E.164 for a sender as phones and providers report it; anything else kept as sent.

    An inbound message is never refused because of its sender. Phones report national numbers
    ("0712345672", read in `region`: the country of the SIM that received it, else
    SMSGATE_DEFAULT_REGION), international numbers without their '+' ("254712345671") and
    alphanumeric sender ids ("MPESA"), which are stored verbatim. The raw inbound log keeps
    what was sent.
    """
    text = (raw or "").strip()
    if not text:
        return ""
    if not set(text) <= _NUMBER_CHARACTERS:
        return text[:MAX_SENDER_LENGTH]
    found = _valid(text, region or settings.SMSGATE_DEFAULT_REGION or None)
    digits = text.replace(" ", "").replace("-", "")
    if found is None and digits.isdigit() and not digits.startswith("0"):
        found = _valid("+" + digits, None)
    if found is not None:
        return found
    # Not a valid number anywhere: kept in E.164 when it is a possible one (test ranges such as
    # +1 555 are not "valid"), else verbatim.
    try:
        number = phonenumbers.parse(text, settings.SMSGATE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return text[:MAX_SENDER_LENGTH]
    if not phonenumbers.is_possible_number(number):
        return text[:MAX_SENDER_LENGTH]
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def can_reply_to(sender: str) -> bool:
    """Only an E.164 number can be texted back: a sender id ("MPESA") or a number that could
    not be read as one is never replied to (automation, chat webhooks, the dashboard)."""
    return len(sender) > 1 and sender[0] == "+" and sender[1:].isdigit()
