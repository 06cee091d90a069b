"""Whatever reaches a provider's receive URL, the answer is never a 5xx and the request is in
the raw inbound log exactly once. Requests are signed as the provider would sign them (most of
the time), so the parsers behind the signature checks are fuzzed too; tests/providers covers
the fixed malformed cases."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from messaging.models import ProviderApp
from providers.vonage import compute_signature
from tests.fuzz.conftest import RawLog, budget
from tests.fuzz.strategies import (
    body_for,
    deep_json,
    field_text,
    json_value,
    methods,
    mostly,
    raw_query,
)
from tests.providers.conftest import (
    AT_TOKEN,
    VONAGE_SECRET,
    agile_app,  # noqa: F401  (fixtures)
    at_app,  # noqa: F401
    receive_path,
    twilio_app,  # noqa: F401
    twilio_signature,
    unsigned_vonage_app,  # noqa: F401
    vonage_app,  # noqa: F401
)

pytestmark = pytest.mark.django_db

# The parameters each provider sends (docs/providers/README.md), so fuzzed requests look like theirs.
PARAMS = {
    "twilio": (
        "From",
        "To",
        "Body",
        "MessageSid",
        "SmsSid",
        "AccountSid",
        "NumMedia",
        "MediaUrl0",
        "MessageStatus",
        "ErrorCode",
        "NumSegments",
    ),
    "vonage": (
        "msisdn",
        "to",
        "text",
        "messageId",
        "type",
        "keyword",
        "message-timestamp",
        "timestamp",
        "nonce",
        "concat",
        "concat-ref",
        "concat-total",
        "concat-part",
        "status",
        "err-code",
        "client-ref",
    ),
    "africastalking": (
        "from",
        "to",
        "text",
        "id",
        "date",
        "linkId",
        "networkCode",
        "status",
        "failureReason",
        "phoneNumber",
        "retryCount",
    ),
    "agiletelecom": ("originator", "destination", "date_time", "text", "id", "status"),
}

SENDER = {
    "twilio": "From",
    "vonage": "msisdn",
    "africastalking": "from",
    "agiletelecom": "originator",
}

APP_NUMBER = {
    "twilio": "+254709000111",
    "vonage": "254709000111",
    "africastalking": "35555",
    "agiletelecom": "+393331234333",
}


@st.composite
def provider_params(draw: st.DrawFn, provider: str) -> dict[str, str]:
    names = PARAMS[provider]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
    params: dict[str, str] = {}
    for name in chosen:
        if name in ("To", "to", "destination") and draw(st.booleans()):
            params[name] = APP_NUMBER[provider]
        else:
            params[name] = draw(field_text)
    params.update(draw(st.dictionaries(field_text, field_text, max_size=2)))
    if draw(mostly(st.just(True), st.just(False))):
        # Most requests name a sender, so parsing goes past the first required field.
        params[SENDER[provider]] = draw(mostly(st.just("+254722000333"), field_text))
    if provider == "vonage" and draw(mostly(st.just(True), st.just(False))):
        # A signed Vonage request is only accepted with a fresh timestamp.
        params["timestamp"] = str(int(time.time()))
    return params


def _signed(app: ProviderApp, params: dict[str, str]) -> dict[str, str]:
    """The query a genuine provider request carries (Twilio signs the final URL, below)."""
    query: dict[str, str] = {}
    if app.provider == "africastalking":
        query["token"] = AT_TOKEN
    elif app.provider == "vonage" and app.name == "Vonage signed":
        try:
            params["sig"] = compute_signature(params, VONAGE_SECRET, "sha256")
        except Exception:  # parameters the signer itself cannot encode get a wrong signature
            params["sig"] = "0" * 64
    return query


# Africa's Talking and Agile Telecom only ever POST a form; Twilio and Vonage also use GET.
FORM_ONLY = ("africastalking", "agiletelecom")


@pytest.mark.parametrize(
    "fixture", ["twilio_app", "vonage_app", "unsigned_vonage_app", "at_app", "agile_app"]
)
@given(data=st.data())
@budget(40)
def test_provider_receive_never_fails_and_logs_every_request(
    request: pytest.FixtureRequest, raw_log: RawLog, fixture: str, data: st.DataObject
) -> None:
    app: ProviderApp = request.getfixturevalue(fixture)
    path = receive_path(app)
    usual = ["POST"] if app.provider in FORM_ONLY else ["POST", "GET"]
    method = data.draw(mostly(st.sampled_from(usual), methods))
    params = data.draw(provider_params(app.provider))
    encodings = ["form"] if app.provider in FORM_ONLY or method != "GET" else ["query"]
    encoding = data.draw(
        mostly(st.sampled_from(encodings), st.sampled_from(["json", "other", "deep"]))
    )
    signed = data.draw(mostly(st.just(True), st.just(False)))
    query = _signed(app, params) if signed else {}
    body = b""
    content_type = "application/x-www-form-urlencoded"
    if encoding == "form":
        body = urlencode(params).encode()
    elif encoding == "json":
        body, content_type = data.draw(body_for(params))
    elif encoding == "query":
        query.update(params)
    elif encoding == "deep":
        body, content_type = data.draw(deep_json()), "application/json"
    else:
        body, content_type = data.draw(body_for(data.draw(st.dictionaries(field_text, json_value))))
    extra = data.draw(mostly(st.just(""), raw_query))
    query_string = "&".join(q for q in (urlencode(query), extra) if q)
    headers: dict[str, str] = {}
    if signed and app.provider == "twilio":
        url = f"http://testserver{path}" + (f"?{query_string}" if query_string else "")
        form_params = params if method == "POST" and encoding == "form" else {}
        headers["HTTP_X_TWILIO_SIGNATURE"] = twilio_signature(url, form_params)

    response = Client().generic(
        method, path, data=body, content_type=content_type, QUERY_STRING=query_string, **headers
    )

    assert response.status_code < 500, (method, query_string, body, content_type)
    raw_log.assert_logged(response)
