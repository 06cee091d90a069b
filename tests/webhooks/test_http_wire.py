"""The outbound client sends what requests sent and answers with what requests answered:
callers (providers, webhook formats) and receivers see no difference."""

from __future__ import annotations

import gzip
import json
from base64 import b64encode
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from smsgate import http


def last(httpserver: HTTPServer, path: str) -> Request:
    return [r for r, _ in httpserver.log if r.path == path][-1]


def test_pairs_are_form_encoded_like_requests_did(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/form", method="POST").respond_with_data("ok")
    data = {"To": "+254 700", "Body": "héllo & bye", "Tag": ["a", "b"], "Skip": None}
    http.send("POST", httpserver.url_for("/form"), data=data, allow_private=True)
    request = last(httpserver, "/form")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.get_data() == b"To=%2B254+700&Body=h%C3%A9llo+%26+bye&Tag=a&Tag=b"
    assert parse_qs(request.get_data(as_text=True)) == {
        "To": ["+254 700"],
        "Body": ["héllo & bye"],
        "Tag": ["a", "b"],
    }


def test_a_list_of_pairs_is_form_encoded_in_order(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/form").respond_with_data("ok")
    http.send("POST", httpserver.url_for("/form"), data=[("b", 1), ("a", 2)], allow_private=True)
    assert last(httpserver, "/form").get_data() == b"b=1&a=2"


def test_signed_bytes_go_out_unchanged_with_the_callers_content_type(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    body = b'{"b": 1,  "a":"\xc3\xa9"}'  # not what json.dumps would make of it
    http.send(
        "POST",
        httpserver.url_for("/hook"),
        data=body,
        headers={"content-type": "application/json", "X-Signature": "sig"},
        allow_private=True,
    )
    request = last(httpserver, "/hook")
    assert request.get_data() == body
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Length"] == str(len(body))
    assert request.headers["X-Signature"] == "sig"


def test_json_is_sent_as_json(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/json").respond_with_data("ok")
    http.send("POST", httpserver.url_for("/json"), json={"é": [1, None]}, allow_private=True)
    request = last(httpserver, "/json")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == {"é": [1, None]}


def test_a_json_body_that_cannot_be_encoded_is_an_outbound_error(httpserver: HTTPServer) -> None:
    with pytest.raises(http.OutboundError, match="The request failed"):
        http.send("POST", httpserver.url_for("/x"), json={"n": float("nan")}, allow_private=True)
    assert not httpserver.log


def test_auth_is_a_basic_authorization_header(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api").respond_with_data("ok")
    http.send("POST", httpserver.url_for("/api"), auth=("AC12", "s3cr:t"), allow_private=True)
    expected = b64encode(b"AC12:s3cr:t").decode()
    assert last(httpserver, "/api").headers["Authorization"] == f"Basic {expected}"


def test_credentials_in_the_url_are_basic_auth(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    url = f"http://hook%40user:p%20w@127.0.0.1:{httpserver.port}/hook?x=1"
    http.send("POST", url, allow_private=True)
    request = last(httpserver, "/hook")
    expected = b64encode(b"hook@user:p w").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.query_string == b"x=1"
    assert request.headers["Host"] == f"127.0.0.1:{httpserver.port}"


def test_it_sends_the_headers_requests_sent_and_the_callers_win(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    http.send(
        "post", httpserver.url_for("/hook"), headers={"accept": "text/plain"}, allow_private=True
    )
    request = last(httpserver, "/hook")
    assert request.method == "POST"
    assert request.headers["User-Agent"].startswith("smsgate/")
    assert request.headers["Accept"] == "text/plain"
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.headers["Connection"] == "keep-alive"
    assert request.headers["Content-Length"] == "0"
    assert "Cookie" not in request.headers


def test_the_answer_reads_like_a_requests_response(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/plain").respond_with_response(
        Response(
            "caf\xe9".encode("latin-1"),
            status=429,
            headers={"Retry-After": "7"},
            content_type="text/plain",
        )
    )
    url = httpserver.url_for("/plain")
    response = http.send("GET", url, allow_private=True)
    assert response.status_code == 429
    assert not response.ok
    assert response.reason == "TOO MANY REQUESTS"
    assert response.url == url
    assert response.headers["retry-after"] == "7"
    # text/* without a charset is ISO-8859-1, as requests guesses it.
    assert response.encoding == "ISO-8859-1"
    assert response.text == "café"


def test_json_answers_decode_and_gzip_is_undone(httpserver: HTTPServer) -> None:
    body = json.dumps({"status": "queued", "to": "+254700"}).encode()
    httpserver.expect_request("/api").respond_with_response(
        Response(
            gzip.compress(body),
            headers={"Content-Encoding": "gzip"},
            content_type="application/json; charset=utf-8",
        )
    )
    response = http.send("POST", httpserver.url_for("/api"), allow_private=True)
    assert response.ok
    assert response.encoding == "utf-8"
    assert response.content == body
    assert response.json() == {"status": "queued", "to": "+254700"}
