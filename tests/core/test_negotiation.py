"""The API's content negotiation answers as DRF's does, without parsing the usual request."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404
from django.test import RequestFactory
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request

from smsgate.negotiation import ContentNegotiation

RENDERER_LISTS = [
    [JSONRenderer()],
    [JSONRenderer(), BrowsableAPIRenderer()],
    [BrowsableAPIRenderer(), JSONRenderer()],
]


def request(path: str, accept: str | None) -> Request:
    headers = {} if accept is None else {"Accept": accept}
    return Request(RequestFactory().post(path, headers=headers))


def outcome(negotiation: Any, req: Request, renderers: list[Any], suffix: str | None) -> Any:
    try:
        renderer, media_type = negotiation.select_renderer(req, renderers, suffix)
    except (NotAcceptable, Http404) as exc:
        return type(exc)
    return type(renderer), media_type


@pytest.mark.parametrize("renderers", RENDERER_LISTS)
@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "application/json; indent=4", "text/html", "text/*", ""],
)
@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/messages?format=json", "/x?a=1"])
@pytest.mark.parametrize("suffix", [None, "json", "api"])
def test_the_same_renderer_as_drf(renderers: list[Any], accept: str | None, path: str, suffix):
    ours = outcome(ContentNegotiation(), request(path, accept), renderers, suffix)
    drf = outcome(DefaultContentNegotiation(), request(path, accept), renderers, suffix)
    assert ours == drf


def test_a_plain_request_is_answered_without_building_its_headers_or_query() -> None:
    req = request("/api/v1/messages", None)
    renderer, media_type = ContentNegotiation().select_renderer(req, [JSONRenderer()])
    assert (type(renderer), media_type) == (JSONRenderer, "application/json")
    # Both are cached properties of the Django request: never read, never built.
    assert "headers" not in req._request.__dict__ and "GET" not in req._request.__dict__
