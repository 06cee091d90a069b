"""Whatever a provider (or anyone) posts, the answer is never a 5xx, and it is logged."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import InboundRequest
from tests.providers.conftest import AT_TOKEN, receive_path, twilio_signature

pytestmark = pytest.mark.django_db

PROVIDER_FIXTURES = ["twilio_app", "vonage_app", "unsigned_vonage_app", "at_app", "agile_app"]

BODIES = [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"%%%%&&&===&=&a"),
    ("application/x-www-form-urlencoded", b"from=%FF%FE&text=%C3%28&msisdn=%00"),
    ("application/x-www-form-urlencoded", "text=caf\u00e9&from=\u2603".encode()),
    ("application/x-www-form-urlencoded", b"concat=true&msisdn=1&concat-part=x"),
    ("application/x-www-form-urlencoded", b"concat=true&msisdn=1&concat-ref=a&concat-total=0"),
    (
        "application/x-www-form-urlencoded",
        b"concat=true&msisdn=1&concat-ref=a&concat-total=2&concat-part=3",
    ),
    ("application/x-www-form-urlencoded", b"msisdn=&text=hi"),
    ("application/x-www-form-urlencoded", b"status=delivered"),
    ("application/x-www-form-urlencoded", b"originator=x&destination=y&date_time=z&text=t"),
    ("application/x-www-form-urlencoded", b"\x00\x01\x02\xff\xfe"),
    ("application/json", b"{"),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'"just a string"'),
    ("application/json", b"null"),
    ("application/json", b'{"msisdn": {"nested": 1}}'),
    ("application/json", b'{"msisdn": [1, 2]}'),
    ("application/json", b'{"msisdn": 254722000333, "text": 12, "concat": true}'),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", json.dumps({"a": "b" * 10000}).encode()),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nbroken"),
    ("multipart/form-data", b"no boundary at all"),
    ("text/xml", b"<Response><Message>hi</Message>"),
    ("text/plain", b"+OK"),
    ("application/octet-stream", bytes(range(256))),
]


def _path(app):
    return receive_path(app) + (f"?token={AT_TOKEN}" if app.provider == "africastalking" else "")


@pytest.mark.parametrize("fixture", PROVIDER_FIXTURES)
@pytest.mark.parametrize(("content_type", "body"), BODIES)
def test_a_malformed_post_is_a_4xx_or_acknowledged_never_a_5xx(
    request, fixture, content_type, body
):
    app = request.getfixturevalue(fixture)
    response = Client().post(_path(app), body, content_type=content_type)
    assert response.status_code < 500
    assert InboundRequest.objects.get().status_code == response.status_code


@pytest.mark.parametrize("fixture", PROVIDER_FIXTURES)
@pytest.mark.parametrize("method", ["put", "patch", "delete", "options", "head"])
def test_other_methods_are_refused_cleanly(request, fixture, method):
    app = request.getfixturevalue(fixture)
    response = getattr(Client(), method)(_path(app))
    assert response.status_code < 500


@pytest.mark.parametrize("fixture", PROVIDER_FIXTURES)
@pytest.mark.parametrize(
    "query",
    [
        "",
        "?a=%ZZ",
        "?msisdn=%FF",
        "?msisdn=1&concat=true",
        "?msisdn=%00&text=a%00b",
        "?" + "x=1&" * 3000,
        "?" + "x=1&" * 6000,
    ],
)
def test_a_malformed_get_is_never_a_5xx(request, fixture, query):
    app = request.getfixturevalue(fixture)
    assert Client().get(receive_path(app) + query).status_code < 500


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"From": ""},
        {"MessageStatus": "delivered"},
        {"MessageStatus": "nonsense", "MessageSid": "x" * 500},
        {"From": "not a number", "Body": "\x00"},
        {"From": "+1", "NumMedia": "many"},
        {"From": "+1", "NumMedia": "-5"},
    ],
)
def test_signed_but_odd_twilio_requests_are_never_a_5xx(twilio_app, params):
    from urllib.parse import urlencode

    path = receive_path(twilio_app)
    signature = twilio_signature(f"http://testserver{path}", params)
    response = Client().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code < 500


def test_an_oversized_body_is_logged_and_refused(unsigned_vonage_app, settings):
    settings.SMSGATE_MAX_BODY_BYTES = 64 * 1024
    big = b"a=" + b"x" * (64 * 1024 + 10)
    response = Client().post(
        receive_path(unsigned_vonage_app), big, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert InboundRequest.objects.get().body_truncated


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain",
            "multipart/form-data",
        ]
    ),
    body=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=8).map(
            lambda d: json.dumps(d).encode()
        ),
        st.dictionaries(
            st.sampled_from(
                [
                    "msisdn",
                    "text",
                    "concat",
                    "concat-ref",
                    "concat-total",
                    "concat-part",
                    "status",
                    "messageId",
                    "from",
                    "id",
                    "originator",
                    "destination",
                    "date_time",
                    "type",
                    "client-ref",
                ]
            ),
            st.text(max_size=20),
            max_size=10,
        ).map(lambda d: json.dumps(d).encode()),
    ),
)
def test_fuzzed_bodies_never_produce_a_5xx(
    unsigned_vonage_app, at_app, agile_app, content_type, body
):
    for app in (unsigned_vonage_app, at_app, agile_app):
        response = Client().post(_path(app), body, content_type=content_type)
        assert response.status_code < 500, (app.provider, body)


def test_a_nul_in_the_app_id_is_a_404(db):
    response = Client().post(
        "/api/sms/apps/app_%00x/receive", "a=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 404


def test_an_app_saved_without_credentials_refuses_rather_than_fails(db):
    from tests.factories import ProviderAppFactory

    app = ProviderAppFactory()  # a Twilio app with no stored credentials
    response = Client().post(
        receive_path(app), "From=%2B1555", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 403
