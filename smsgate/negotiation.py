"""Content negotiation without the parsing an API client's usual request needs none of.

Nearly every call names no format and accepts anything (no `Accept` header, or `*/*`): DRF's
negotiation then still builds the request's header and query-string mappings and parses the
Accept list, only to pick the first renderer, as `*/*` matches every one. That is the same
answer, given here at once; anything else goes through DRF's negotiation unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        meta = request._request.META
        if (
            isinstance(renderers, Sequence)  # DRF passes the view's list
            and renderers
            and not format_suffix
            and not meta.get("QUERY_STRING")  # no `?format=` (nor any other parameter)
            and meta.get("HTTP_ACCEPT", "*/*") == "*/*"
        ):
            # What DRF answers for `*/*`: the first renderer, with its own media type.
            return renderers[0], str(renderers[0].media_type)
        selected: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return selected
