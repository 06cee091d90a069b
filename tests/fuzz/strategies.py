"""Hypothesis strategies for what phones and providers (or anyone) might send."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

# Text that breaks things: NUL and other control characters, astral-plane characters,
# right-to-left text, and lone percent signs.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=30, max_size=80),  # past the column sizes (32, 64)
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ufeff",
            "\U0001f600" * 3,
            "مرحبا",
            "%",
            "%00",
            "%ZZ",
            "\r\n",
            "<xml/>",
            "null",
            "true",
            "-1",
            "1e309",
            "99999999999999999999999999",
        ]
    ),
)

# Values that look like what the field should hold, so parsing goes further than the first
# check: phone numbers, epoch milliseconds, ISO dates, uuids, slots.
plausible_text = st.one_of(
    st.sampled_from(
        [
            "+254722000333",
            "0722000333",
            "+1555",
            "35555",
            "ACME",
            "+",
            "1744029005123",
            "2026-01-02T03:04:05Z",
            "20260102030405",
            "0",
            "1",
            "2",
        ]
    ),
    st.uuids().map(str),
    st.integers().map(str),
    st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True),
)

field_text = st.one_of(nasty_text, plausible_text)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers(min_value=10**20, max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    field_text,
)

json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(field_text, children, max_size=4),
    ),
    max_leaves=12,
)

# `json_value` nests at most a dozen levels (its leaf budget), and it is built as a Python
# value that `json.dumps` itself could not serialise a few thousand levels deep; but Python's
# JSON parser recurses once per level and fails near a thousand. So deep nesting is written as
# text: runs of openers, closed or cut short, bare or inside an object that looks like a
# request (so form-or-JSON sniffers such as SMSSync's take the JSON path).
_OPENERS = {"[": "]", '{"a":': "}", "[1,": "]", '{"messages":': "}"}


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([33, 999, 1000, 5000, 100_000]) | st.integers(30, 20_000))
    opener = draw(st.sampled_from(sorted(_OPENERS)))
    closer = _OPENERS[opener] if draw(st.integers(0, 3)) else ""  # mostly well formed
    text = opener * depth + "0" + closer * depth
    if draw(st.booleans()):
        text = '{"action": "incoming", "from": "+254722000333", "message": "hi", "x": ' + text
        text += "}"
    return text.encode()


methods = st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/json",
        "application/json; charset=utf-16",
        "text/xml",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "",
    ]
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` four times in five, else `odd`: requests must mostly get past authentication and
    routing for the parsers behind them to be fuzzed at all."""
    return st.integers(0, 4).flatmap(lambda i: odd if i == 4 else usual)


def form(fields: dict[str, Any]) -> bytes:
    return urlencode({k: str(v) for k, v in fields.items()}).encode()


def as_json(value: Any) -> bytes:
    # `ensure_ascii=False` keeps lone characters such as NUL as raw bytes in the body.
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def xml_of(fields: dict[str, Any]) -> bytes:
    inner = "".join(
        f"<{quote(str(k)) or 'x'}>{v}</{quote(str(k)) or 'x'}>" for k, v in fields.items()
    )
    return f"<?xml version='1.0'?><request>{inner}</request>".encode("utf-8", "surrogatepass")


raw_query = st.one_of(
    st.just(""),
    st.dictionaries(field_text, field_text, max_size=5).map(urlencode),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    st.just("a=%ZZ&b=%FF%FE&c=%00"),
    st.just("x=1&" * 1200),
)


@st.composite
def body_for(draw: st.DrawFn, fields: dict[str, Any]) -> tuple[bytes, str]:
    """The same fields in each encoding a client might pick, labelled with a content type
    that may or may not match."""
    encoded = draw(
        st.sampled_from(["form", "json", "xml", "raw", "json_value", "deep_json"]),
    )
    if encoded == "form":
        body = form(fields)
    elif encoded == "json":
        body = as_json(fields)
    elif encoded == "xml":
        body = xml_of(fields)
    elif encoded == "json_value":
        body = as_json(draw(json_value))
    elif encoded == "deep_json":
        body = draw(deep_json())
    else:
        body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        content_type = {
            "form": "application/x-www-form-urlencoded",
            "json": "application/json",
            "json_value": "application/json",
            "deep_json": "application/json",
            "xml": "application/json",  # XML sent as JSON: a misconfigured client
            "raw": "application/octet-stream",
        }[encoded]
    else:
        content_type = draw(content_types)
    return body, content_type


# Headers a client may add or get wrong, beside the ones a door reads (Host is left alone:
# Django refuses an unknown one before any door runs).
junk_headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_ACCEPT",
            "HTTP_ACCEPT_ENCODING",
            "HTTP_ACCEPT_LANGUAGE",
            "HTTP_CONTENT_ENCODING",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_REQUEST_ID",
            "HTTP_IF_NONE_MATCH",
            "HTTP_RANGE",
            "HTTP_USER_AGENT",
            "HTTP_COOKIE",
            "HTTP_ORIGIN",
        ]
    ),
    st.sampled_from(
        ["", "*/*", "text/html", "application/xml", "gzip", "bytes=0-1", "a=b; c", "\x7f", "é"]
    )
    | st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
    max_size=4,
)

# A body far larger than anything a phone or a client sends (past the raw log's cap too).
huge_json = st.sampled_from([10_000, 300_000, 2_000_000]).map(
    lambda n: ('{"x": "' + "a" * n + '"}').encode()
)


def shaped(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """An object with the `required` keys (values as drawn) and some `optional` ones, four
    times in five; else the same keys, any of them missing or holding any JSON value."""
    junk = {k: json_value | s for k, s in {**required, **optional}.items()}
    return mostly(
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries({}, optional=junk),
    )


@st.composite
def odd_body(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` most of the time; else random bytes, deeply nested JSON or a huge body."""
    pick = draw(st.integers(0, 15))
    if pick == 13:
        return draw(st.binary(max_size=100))
    if pick == 14:
        return draw(deep_json())
    if pick == 15:
        return draw(huge_json)
    return body
