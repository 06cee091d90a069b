"""Whatever reaches the SMS Gateway for Android app's mobile API (`/api/mobile/v1/...`) and the
webhooks the phone signs (docs/phones/sms-gateway-app.md), the answer is never a 5xx, always
JSON, the request is in the raw inbound log exactly once, and a request refused with a 4xx
stores nothing. Requests mostly carry the real tokens, ids and signatures, so the parsers and
services behind the checks are fuzzed too; tests/phones covers the fixed cases."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from hypothesis import event, given
from hypothesis import strategies as st

from messaging.models import Status
from phones.smsgateway.hooks import signature_for
from phones.smsgateway.services import signing_key
from phones.smsgateway.views import HOOK_EVENTS
from phones.smsgateway.wire import STATES
from tests.factories import OutboundMessageFactory
from tests.fuzz.conftest import RawLog, budget, stored
from tests.fuzz.strategies import (
    as_json,
    content_types,
    field_text,
    json_leaf,
    json_value,
    junk_headers,
    methods,
    mostly,
    odd_body,
    raw_query,
    shaped,
)
from tests.phones.conftest import APP_UA, BASE, AppPhone, app_phone

pytestmark = pytest.mark.django_db


@dataclass
class FuzzPhone(AppPhone):
    # The ids of its outbound messages, fixed at the start: the strategies must draw from the
    # same list in every example (the webhooks add inbound messages as they go).
    ids: list[str] = field(default_factory=list)


@pytest.fixture
def phone(db: None) -> FuzzPhone:
    """A registered app phone with messages it was handed (dispatched) and messages waiting
    for its next pull (queued), so state reports and pulls can name real ids."""
    paired = app_phone(sims=2)
    app = FuzzPhone(device=paired.device, private_token=paired.private_token)
    response = app.register()
    assert response.status_code == 201, response.content
    app.token = response.json()["token"]
    app.device.refresh_from_db()
    for status in (Status.DISPATCHED, Status.DISPATCHED, Status.QUEUED, Status.QUEUED):
        OutboundMessageFactory(device=app.device, status=status, sim_slot=1)
    app.ids = sorted(str(pk) for pk in app.device.messages.values_list("pk", flat=True))
    return app


def _text_or_junk(usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return mostly(usual, field_text | json_value)


sim_cards = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "simNumber": st.sampled_from([1, 2, 3, 0, -1]) | json_leaf,
            "slotIndex": st.sampled_from([0, 1, 2]) | json_leaf,
            "phoneNumber": st.sampled_from(["+254722000333", "", "********"]) | json_leaf,
            "carrierName": json_leaf,
        },
    )
    | json_value,
    max_size=4,
)

times = st.sampled_from(["2026-01-02T03:04:05.123+03:00", "2026-01-02T03:04:05Z"]) | json_leaf


def _state_items(ids: list[str]) -> st.SearchStrategy[Any]:
    item = st.fixed_dictionaries(
        {},
        optional={
            "id": _text_or_junk(st.sampled_from(ids)),
            "state": _text_or_junk(st.sampled_from(STATES)),
            "recipients": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "phoneNumber": field_text,
                        "state": st.sampled_from(STATES) | json_leaf,
                        "error": json_leaf,
                    },
                )
                | json_value,
                max_size=3,
            )
            | json_value,
            "states": st.dictionaries(st.sampled_from(STATES) | field_text, times, max_size=3)
            | json_value,
        },
    )
    return st.lists(item | json_value, max_size=6) | json_value


@st.composite
def mobile_calls(draw: st.DrawFn, app: FuzzPhone) -> dict[str, Any]:
    """A call of the mobile API: method, path, query, body, content type and headers."""
    kind = draw(
        st.sampled_from(["register", "patch_device", "get_device", "pull", "patch_states", "get"])
    )
    if kind == "register":
        method, path = "POST", "/device"
        token = draw(mostly(st.just(app.private_token), st.sampled_from(["", app.token])))
        body: Any = {
            **draw(
                st.fixed_dictionaries(
                    {}, optional={"name": _text_or_junk(field_text), "simCards": sim_cards}
                )
            ),
            **draw(st.dictionaries(field_text, json_value, max_size=2)),
        }
    elif kind == "patch_device":
        method, path, token = "PATCH", "/device", app.token
        body = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": _text_or_junk(st.just(app.device.pk)),
                    "simCards": sim_cards | json_value,
                },
            )
        )
    elif kind == "patch_states":
        method, path, token = "PATCH", "/message", app.token
        body = draw(_state_items(app.ids))
    else:
        method, token, body = "GET", app.token, None
        path = {"get_device": "/device", "pull": "/message"}.get(kind) or draw(
            st.sampled_from(["/messages", "/webhooks", "/settings"])
        )
    token = draw(mostly(st.just(token), st.sampled_from(["", "wrong", app.private_token])))
    raw = draw(odd_body(b"" if body is None else as_json(body)))
    headers: dict[str, str] = {"HTTP_USER_AGENT": APP_UA}
    if draw(st.booleans()):
        headers.update(draw(junk_headers))
    scheme = draw(mostly(st.just("Bearer"), st.sampled_from(["Basic", "bearer", "", "Token"])))
    if token or scheme:
        headers["HTTP_AUTHORIZATION"] = f"{scheme} {token}"
    query = draw(
        mostly(st.sampled_from(["", "order=lifo", "order=fifo"]), st.just("order=x") | raw_query)
    )
    return {
        "method": draw(mostly(st.just(method), methods)),
        "path": BASE + path,
        "query": query,
        "body": raw,
        "content_type": draw(mostly(st.just("application/json"), content_types)),
        "headers": headers,
    }


def _call(req: dict[str, Any]) -> Any:
    return Client().generic(
        req["method"],
        req["path"],
        data=req["body"],
        content_type=req["content_type"],
        QUERY_STRING=req["query"],
        **req["headers"],
    )


def check_answer(response: Any, before: dict[str, Any], req: Any) -> None:
    """No 5xx; JSON (or no body); a 4xx stored nothing."""
    assert response.status_code < 500, req
    assert response["Content-Type"].startswith("application/json"), (response, req)
    if response.content:
        json.loads(response.content)
    if 400 <= response.status_code < 500:
        assert stored() == before, (response.status_code, response.content, req)


@given(data=st.data())
@budget(150)
def test_mobile_api_never_fails_and_refuses_bad_input_cleanly(
    phone: FuzzPhone, raw_log: RawLog, data: st.DataObject
) -> None:
    req = data.draw(mobile_calls(phone))
    before = stored()
    response = _call(req)
    event(f"{req['method']} {req['path'].split('/v1/')[1]}: {response.status_code}")
    check_answer(response, before, req)
    raw_log.assert_logged(response)
    if response.status_code == 201 and req["path"].endswith("/device"):
        # A registration replaces the token: the next examples use the new one.
        phone.token = response.json()["token"]


def _payloads(ids: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    report = shaped(
        {"messageId": st.sampled_from(ids)},
        {
            "phoneNumber": field_text,
            "reason": json_leaf,
            "sentAt": times,
            "deliveredAt": times,
            "failedAt": times,
            "simNumber": st.sampled_from([1, 2]),
        },
    )
    received = shaped(
        {
            "message": field_text,
            "sender": st.sampled_from(["+254722000333", "MPESA", "35555", "0722000333"]),
        },
        {
            "messageId": st.integers(-(2**31), 2**31),
            "data": st.just("aGVsbG8="),
            "phoneNumber": field_text,
            "recipient": field_text,
            "simNumber": st.sampled_from([1, 2, 3]),
            "receivedAt": times,
        },
    )
    observed = shaped({"observedValue": st.integers(-5, 105) | json_leaf}, {"unit": json_leaf})
    ping = shaped(
        {
            "health": shaped(
                {"checks": shaped({"battery:level": observed}, {})}, {"status": json_leaf}
            )
        },
        {},
    )
    return {
        "sms:received": received,
        "sms:data-received": received,
        "sms:sent": report,
        "sms:delivered": report,
        "sms:failed": report,
        "sms:cancelled": report,
        "system:ping": ping,
        "app:started": shaped({"simCards": sim_cards}, {}),
    }


@st.composite
def phone_webhooks(draw: st.DrawFn, app: FuzzPhone, key: str) -> dict[str, Any]:
    """A webhook as the phone sends it (`POST /webhooks/<event>`, envelope signed with the
    device's key): mostly right, sometimes with the wrong device, event, key or time."""
    event = draw(
        mostly(
            st.sampled_from(HOOK_EVENTS),
            st.sampled_from(["mms:received", "sms:Received", "x"])
            | st.text(
                alphabet=st.characters(
                    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"
                ),
                min_size=1,
                max_size=20,
            ),
        )
    )
    payload = draw(_payloads(app.ids).get(event, json_value))
    envelope = draw(
        mostly(
            shaped(
                {
                    "id": st.uuids().map(str),
                    "webhookId": st.just("smsgate-" + event.replace(":", "-")),
                    "event": mostly(st.just(event), st.sampled_from(HOOK_EVENTS)),
                    "deviceId": mostly(st.just(app.device.pk), st.just("dev_other")),
                    "payload": st.just(payload),
                },
                {},
            ),
            json_value,
        )
    )
    body = draw(odd_body(as_json(envelope)))
    stamp = draw(
        mostly(
            st.just(str(int(time.time()))),
            st.sampled_from(
                ["", "0", "-1", "1e9", "99999999999999999999", str(int(time.time()) - 7200)]
            )
            | field_text.filter(lambda t: "\n" not in t and "\r" not in t),
        )
    )
    headers: dict[str, str] = {"HTTP_USER_AGENT": APP_UA}
    signing = draw(mostly(st.just("right"), st.sampled_from(["none", "wrong key", "junk"])))
    if signing != "none":
        secret = key if signing == "right" else "not the key"
        signature = signature_for(secret, body, stamp)
        if signing == "junk":
            signature = draw(st.sampled_from(["", "zz", signature.upper(), signature[:-1]]))
        headers["HTTP_X_SIGNATURE"] = signature
        headers["HTTP_X_TIMESTAMP"] = stamp
    if draw(st.booleans()):
        headers.update(draw(junk_headers))
    return {
        "method": draw(mostly(st.just("POST"), methods)),
        "path": f"{BASE}/webhooks/{event}",
        "query": draw(mostly(st.just(""), raw_query)),
        "body": body,
        "content_type": draw(mostly(st.just("application/json"), content_types)),
        "headers": headers,
    }


@given(data=st.data())
@budget(150)
def test_phone_webhooks_never_fail_and_store_nothing_unsigned(
    phone: FuzzPhone, raw_log: RawLog, data: st.DataObject
) -> None:
    req = data.draw(phone_webhooks(phone, signing_key(phone.device)))
    before = stored()
    response = _call(req)
    event(f"{req['method']} {req['path'].split('/v1/')[1]}: {response.status_code}")
    check_answer(response, before, req)
    raw_log.assert_logged(response)
