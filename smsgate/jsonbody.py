"""JSON from outside (phones, providers, integrators, webhook receivers), parsed with a bound
on nesting.

Python's JSON parser recurses once per nesting level, so a few thousand `[` raise
RecursionError, which no door expects and which surfaced as a 500. No message, report or
request smsgate understands nests more than a few levels, so anything deeper than MAX_DEPTH is
refused as invalid JSON (a ValueError, which every door already answers with its 4xx) before
code that walks the value recursively (serializers, json.dumps, templates) can see it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

MAX_DEPTH = 32


class TooDeep(ValueError):
    """The JSON nests deeper than the bound."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The JSON is nested more than {limit} levels deep.")


def _deeper_than(value: Any, limit: int) -> bool:
    # An explicit stack: the check itself must not recurse.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, **options: Any) -> Any:
    """`json.loads`, raising TooDeep (a ValueError) for a value nested deeper than `max_depth`
    (a top-level object or array is depth 1). Other invalid JSON raises ValueError as usual."""
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise TooDeep(max_depth) from None
    if isinstance(value, dict | list) and _deeper_than(value, max_depth):
        raise TooDeep(max_depth)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the nesting bound: a too deep body is a 400 `parse_error`."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            return loads(text, parse_constant=strict_constant if self.strict else None)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
