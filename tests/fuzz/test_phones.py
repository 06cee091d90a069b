"""Whatever reaches the phone endpoints (SMSSync, MSync), the answer is never a 5xx and the
request is in the raw inbound log, exactly once, with the status it got."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from messaging.models import Status
from tests.factories import OutboundMessageFactory, PairedDevice, paired_device
from tests.fuzz.conftest import RawLog, budget
from tests.fuzz.strategies import (
    as_json,
    body_for,
    content_types,
    deep_json,
    field_text,
    json_leaf,
    json_value,
    methods,
    mostly,
    raw_query,
)

pytestmark = pytest.mark.django_db

SMSSYNC_FIELDS = (
    "secret",
    "from",
    "message",
    "sent_timestamp",
    "sent_to",
    "message_id",
    "device_id",
)
RESULT_FIELDS = (
    "uuid",
    "sent_result_code",
    "sent_result_message",
    "delivered_result_code",
    "delivered_result_message",
)


@pytest.fixture
def phone(db: None) -> PairedDevice:
    paired = paired_device(sims=2)
    # Messages the phone was handed, so `task=sent`/`task=result`/`delivery` can name real uuids.
    for _ in range(3):
        OutboundMessageFactory(device=paired.device, status=Status.DISPATCHED, sim_slot=1)
    return paired


def _uuids(paired: PairedDevice) -> list[str]:
    return [str(u) for u in paired.device.messages.values_list("uuid", flat=True)]


def _send(
    method: str, path: str, query: str, body: bytes, content_type: str, **headers: Any
) -> Any:
    return Client().generic(
        method,
        path,
        data=body,
        content_type=content_type,
        QUERY_STRING=query,
        **headers,
    )


@st.composite
def smssync_requests(draw: st.DrawFn, paired: PairedDevice) -> dict[str, Any]:
    secret = draw(mostly(st.just(paired.secret), st.sampled_from(["", "wrong"]) | field_text))
    uuids = _uuids(paired)
    uuid_values = st.sampled_from(uuids) | field_text
    task = draw(
        mostly(
            st.sampled_from(["", "send", "sent", "result"]),
            st.sampled_from(["results", "SEND"]) | field_text,
        )
    )
    query_fields: dict[str, Any] = {}
    if task or draw(st.booleans()):
        query_fields["task"] = task
    if draw(st.booleans()):
        query_fields["secret"] = secret
    extra_query = draw(raw_query)
    from urllib.parse import urlencode

    query = "&".join(q for q in (urlencode(query_fields), extra_query) if q)

    kind = draw(st.sampled_from(["incoming", "sent", "results", "anything"]))
    if kind == "incoming":
        fields = {
            name: (secret if name == "secret" else draw(field_text))
            for name in SMSSYNC_FIELDS
            if draw(st.integers(0, 4)) < 4  # most fields present
        }
        fields.update(draw(st.dictionaries(field_text, field_text, max_size=3)))
        body, content_type = draw(body_for(fields))
    elif kind == "sent":
        value = draw(st.lists(uuid_values, max_size=5) | json_value)
        body, content_type = draw(body_for({"queued_messages": value}))
    elif kind == "results":
        results = draw(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "uuid": uuid_values | json_leaf,
                        "sent_result_code": st.sampled_from([0, -1, 1, 2]) | json_leaf,
                        "sent_result_message": json_leaf,
                        "delivered_result_code": st.sampled_from([0, -1, 1]) | json_leaf,
                        "delivered_result_message": json_leaf,
                    },
                )
                | json_value,
                max_size=4,
            )
            | json_value
        )
        body, content_type = draw(body_for({"message_result": results}))
    else:
        body, content_type = draw(body_for(draw(st.dictionaries(field_text, json_value))))

    headers: dict[str, str] = {}
    auth = draw(st.sampled_from(["none", "none", "basic", "junk"]))
    if auth == "basic":
        token = draw(st.sampled_from([paired.token, "wrong"]))
        pair = f"{paired.device.pk}:{token}".encode()
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(pair).decode()
    elif auth == "junk":
        headers["HTTP_AUTHORIZATION"] = draw(
            st.sampled_from(
                ["Basic", "Basic !!!", "Basic " + base64.b64encode(b"\xff\x00").decode()]
            )
            | st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)
        )
    if draw(st.booleans()):
        headers["HTTP_USER_AGENT"] = draw(
            st.sampled_from(["SMSSync-Android/v3.1.1", "okhttp/4", "a\x00b"])
        )
    return {
        "method": draw(mostly(st.sampled_from(["POST", "GET"]), methods)),
        "query": query,
        "body": body,
        "content_type": content_type,
        "headers": headers,
    }


@given(data=st.data())
@budget(120)
def test_smssync_never_fails_and_logs_every_request(phone: PairedDevice, raw_log: RawLog, data):
    req = data.draw(smssync_requests(phone))
    response = _send(
        req["method"],
        "/api/sms/smssync",
        req["query"],
        req["body"],
        req["content_type"],
        **req["headers"],
    )
    assert response.status_code < 500, req
    raw_log.assert_logged(response)


MSYNC_ACTIONS = ("incoming", "outgoing", "status", "location", "delivery")


@st.composite
def msync_bodies(draw: st.DrawFn, paired: PairedDevice) -> Any:
    action = draw(mostly(st.sampled_from(MSYNC_ACTIONS), json_leaf))
    device_id = draw(mostly(st.just(paired.device.pk), st.just("dev_other") | json_leaf))
    uuids = _uuids(paired)
    per_action = {
        "incoming": {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "from": field_text | json_leaf,
                        "message": field_text | json_leaf,
                        "timestamp": st.sampled_from([1744029005123, "2026-01-02T03:04:05Z"])
                        | json_leaf,
                        "sim_slot": st.sampled_from([1, 2, 3, 0]) | json_leaf,
                        "id": field_text | json_leaf,
                    },
                )
                | json_value,
                min_size=1,
                max_size=5,
            )
            | json_value
        },
        "outgoing": {"limit": st.integers(-5, 600) | json_value},
        "status": {
            "battery_level": json_leaf,
            "signal_strength": json_leaf,
            "network_type": json_leaf,
            "sim_state": json_leaf,
        },
        "location": {"latitude": json_leaf, "longitude": json_leaf, "accuracy": json_leaf},
        "delivery": {
            "reports": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "uuid": st.sampled_from(uuids) | json_leaf,
                        "status": st.sampled_from(["sent", "delivered", "failed"]) | json_leaf,
                        "timestamp": json_leaf,
                        "error": json_leaf,
                    },
                )
                | json_value,
                min_size=1,
                max_size=4,
            )
            | json_value
        },
    }
    fields = per_action.get(action) if isinstance(action, str) else None
    body: dict[str, Any] = {"action": action, "device_id": device_id}
    if fields is not None:
        body.update(draw(st.fixed_dictionaries({}, optional=fields)))
    body.update(draw(st.dictionaries(field_text, json_value, max_size=2)))
    return draw(mostly(st.just(body), json_value))


@given(data=st.data())
@budget(120)
def test_msync_never_fails_and_logs_every_request(phone: PairedDevice, raw_log: RawLog, data):
    body = as_json(data.draw(msync_bodies(phone)))
    odd = data.draw(st.integers(0, 9))
    if odd == 9:
        body = data.draw(st.binary(max_size=100))
    elif odd == 8:
        body = data.draw(deep_json())
    token = data.draw(mostly(st.just(phone.token), st.sampled_from(["", "wrong"])))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    method = data.draw(mostly(st.just("POST"), methods))
    content_type = data.draw(mostly(st.just("application/json"), content_types))
    response = _send(method, "/api/sms/msync", data.draw(raw_query), body, content_type, **headers)
    assert response.status_code < 500, body
    raw_log.assert_logged(response)
    if response.status_code == 200:
        assert response["Content-Type"].startswith("application/json")
