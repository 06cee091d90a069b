"""Phone numbers at the API boundary: refusals say why, and every documented example passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from smsgate.errors import InvalidInput
from smsgate.phones import to_e164

ROOT = Path(__file__).resolve().parents[2]


def _refusal(raw: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        to_e164(raw)
    return str(refused.value.fields["to"][0])  # type: ignore[attr-defined]


def test_the_seeds_example_number_is_refused_as_too_short_with_a_valid_example() -> None:
    message = _refusal("+1234567890")
    assert "too few digits" in message
    assert re.search(r"\+1\d{10}\b", message), message
    to_e164(re.search(r"\+1\d{10}\b", message).group())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("+4412345678901234", "too many digits"),
        ("+999123456789", "country calling code is unknown"),
        ("0712345678", "no country code"),
        ("not a number", "not made of digits"),
    ],
)
def test_a_refusal_says_why_and_shows_a_number_that_would_pass(raw: str, why: str) -> None:
    message = _refusal(raw)
    assert why in message
    examples = re.findall(r"\+\d{8,15}\b", message.replace(repr(raw), ""))
    assert examples, message
    assert to_e164(examples[-1]) == examples[-1]


def test_the_example_follows_the_default_region(settings: Any) -> None:
    settings.SMSGATE_DEFAULT_REGION = "KE"
    assert "+254" in _refusal("not a number")


def test_test_numbers_that_are_possible_stay_accepted() -> None:
    assert to_e164("+15551234567") == "+15551234567"
    assert to_e164("+1 (202) 555-0123") == "+12025550123"


# Values in the documentation's JSON and curl examples that are meant to be refused, or are
# placeholders rather than numbers.
MEANT_TO_FAIL = {"12", "+1234567890"}
_PHONE_KEYS = r"to|from|phone|phoneNumber|phone_number|number|sender|numbers|recipients"
_JSON_VALUE = re.compile(rf'"(?:{_PHONE_KEYS})"\s*:\s*\[?\s*"([^"]*)"')
_NUMBER_LIKE = re.compile(r"^\+?[\d\s().-]+$")
_E164_ANYWHERE = re.compile(r"(?<![\w+])\+\d{5,17}(?!\d)")


def _documented_numbers() -> list[tuple[str, str]]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    found: dict[str, str] = {}
    for path in files:
        if not path.exists():
            continue
        text = path.read_text()
        for match in [*_JSON_VALUE.finditer(text), *_E164_ANYWHERE.finditer(text)]:
            value = match.group(1) if match.re is _JSON_VALUE else match.group()
            # Placeholders ("+…"), globs ("+1555*") and quoted error messages are not numbers.
            if not _NUMBER_LIKE.match(value) or value in MEANT_TO_FAIL:
                continue
            found.setdefault(value, str(path.relative_to(ROOT)))
    return sorted(found.items())


def test_the_documentation_has_phone_number_examples() -> None:
    assert len(_documented_numbers()) >= 5


@pytest.mark.parametrize(("number", "source"), _documented_numbers())
def test_every_documented_phone_number_is_accepted(number: str, source: str) -> None:
    # Documented national numbers are shown for a deployment with a default region.
    if not number.startswith("+"):
        pytest.skip(f"{number} in {source} is national: valid only with SMSGATE_DEFAULT_REGION")
    assert to_e164(number)
