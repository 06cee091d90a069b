"""Whatever reaches the app's third-party API (`/api/3rdparty/v1/...`, docs/thirdparty.md), the
answer is never a 5xx and always JSON, and a request refused with a 4xx stores nothing.
Requests mostly carry valid credentials (Basic with an API key, Bearer API key, Bearer JWT)
and bodies shaped like the app's client sends, so validation and the services behind it are
fuzzed too; tests/thirdparty covers the fixed cases."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import event, given
from hypothesis import strategies as st

from devices.models import Device
from messaging.models import Message, Status
from smsgate.crypto import hash_secret
from smsgate.models import APIKey
from tests.factories import OutboundMessageFactory, PairedDevice, paired_device
from tests.fuzz.conftest import budget, stored
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
from thirdparty.auth import ADMIN_SCOPES, issue_token
from thirdparty.fleet import CHOICES, EVENTS_OF_APP, SETTINGS_SCHEMA

pytestmark = pytest.mark.django_db

BASE = "/api/3rdparty/v1"
# A path segment: anything but the characters that end one (or start a query).
path_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=40
)


def basic(password: str, login: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def fleet(db: None, admin_key: str, staff_key: str, settings: Any) -> dict[str, Any]:
    """An app phone with messages in each state, an admin key, a staff key and a JWT of the
    admin key (all scopes). Webhook URLs on loopback are allowed (the conftest keeps every
    other name from resolving), so a valid webhook body is stored."""
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    paired: PairedDevice = paired_device(sims=2)
    Device.objects.filter(pk=paired.device.pk).update(app_token_hash=hash_secret("app-token"))
    for status in (Status.QUEUED, Status.DISPATCHED, Status.SENT, Status.DELIVERED):
        OutboundMessageFactory(device=paired.device, status=status)
    ids = [str(pk) for pk in Message.objects.values_list("pk", flat=True)]
    key = APIKey.objects.get(name="admin test key")
    issued = issue_token(key=key, scopes=sorted(ADMIN_SCOPES), ttl=3600)
    return {
        "device": paired.device.pk,
        "ids": ids,
        "admin": admin_key,
        "staff": staff_key,
        "jwt": issued.access_token,
        "refresh": issued.refresh_token,
        "jti": issued.jti,
    }


numbers = st.sampled_from(["+254722000333", "+14155550111", "0722000333", "+1555"]) | field_text
times = (
    st.sampled_from(
        ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+03:00", "2099-01-01T00:00:00Z"]
    )
    | json_leaf
)


def _send_body(device: str) -> st.SearchStrategy[Any]:
    good_numbers = st.lists(
        st.sampled_from(["+254722000333", "+14155550111", "+14155550112"]),
        min_size=1,
        max_size=3,
        unique=True,
    )
    good = shaped(
        {
            "phoneNumbers": good_numbers,
            "textMessage": st.fixed_dictionaries(
                {"text": mostly(st.sampled_from(["hello", "Habari 👋", "x" * 500]), field_text)}
            ),
        },
        {
            "id": st.uuids().map(str),
            "deviceId": st.just(device),
            "simNumber": st.sampled_from([1, 2]),
            "ttl": st.integers(60, 86_400),
            "withDeliveryReport": st.booleans(),
            "priority": st.integers(-128, 127),
            "isEncrypted": st.booleans(),
        },
    )
    odd = st.fixed_dictionaries(
        {},
        optional={
            "phoneNumbers": st.lists(numbers, min_size=1, max_size=4, unique=True),
            "dataMessage": st.fixed_dictionaries(
                {}, optional={"data": json_leaf | st.just("aGVsbG8="), "port": json_leaf}
            ),
            "message": field_text | json_leaf,
            "validUntil": times,
            "scheduleAt": times,
            "ttl": st.integers(-5, 10**9) | json_leaf,
            "simNumber": st.sampled_from([0, 4]) | json_leaf,
        },
    )
    return mostly(good, odd)


def _settings_body() -> st.SearchStrategy[Any]:
    def value(group: str, key: str) -> st.SearchStrategy[Any]:
        kind = SETTINGS_SCHEMA[group][key]
        usual: st.SearchStrategy[Any] = (
            st.sampled_from(sorted(CHOICES[(group, key)]))
            if (group, key) in CHOICES
            else {int: st.integers(-5, 10**10), bool: st.booleans(), str: field_text}[kind]
        )
        return mostly(usual, json_leaf)

    groups = {
        group: st.fixed_dictionaries({}, optional={k: value(group, k) for k in keys})
        | st.dictionaries(field_text, json_leaf, max_size=2)
        | json_leaf
        for group, keys in SETTINGS_SCHEMA.items()
    }
    return mostly(st.fixed_dictionaries({}, optional=groups), json_value)


@st.composite
def app_calls(draw: st.DrawFn, fx: dict[str, Any]) -> dict[str, Any]:
    ids = st.sampled_from(fx["ids"]) | path_text
    kind = draw(
        st.sampled_from(
            [
                "send",
                "list",
                "read",
                "cancel",
                "webhook",
                "delete_webhook",
                "settings",
                "token",
                "refresh",
                "inbox",
                "devices",
            ]
        )
    )
    query = ""
    body: Any = None
    if kind == "send":
        method, path, body = "POST", "/messages", draw(_send_body(fx["device"]))
    elif kind == "list":
        method, path = "GET", "/messages"
        params = st.fixed_dictionaries(
            {},
            optional={
                "limit": st.integers(-1, 200).map(str) | field_text,
                "offset": st.integers(-1, 10**10).map(str) | field_text,
                "state": st.sampled_from(["Pending", "Sent", "Delivered", "x"]) | field_text,
                "from": times.map(str),
                "to": times.map(str),
                "deviceId": st.just(fx["device"]) | field_text,
                "includeContent": st.sampled_from(["true", "0", "x"]),
                "sort": st.sampled_from(["created_at", "-created_at", ""]),
            },
        )
        query = urlencode(draw(params))
    elif kind in ("read", "cancel"):
        method = "GET" if kind == "read" else "DELETE"
        path = f"/messages/{draw(ids)}"
    elif kind == "webhook":
        method, path = "POST", "/webhooks"
        body = draw(
            shaped(
                {
                    "url": mostly(
                        st.just("http://127.0.0.1:9/hook"),
                        st.sampled_from(["https://example.com/h", "ftp://x", "http://[::1"]),
                    ),
                    "event": st.sampled_from(sorted(EVENTS_OF_APP)),
                },
                {"id": st.uuids().map(str), "deviceId": st.just(fx["device"])},
            )
        )
    elif kind == "delete_webhook":
        method, path = (
            "DELETE",
            f"/webhooks/{draw(path_text)}",
        )
    elif kind == "settings":
        method = draw(st.sampled_from(["GET", "PUT", "PATCH"]))
        path, body = "/settings", draw(_settings_body())
    elif kind == "token":
        method, path = "POST", "/auth/token"
        body = draw(
            shaped(
                {
                    "scopes": st.lists(
                        st.sampled_from([*sorted(ADMIN_SCOPES), "all:any"]), min_size=1, max_size=4
                    )
                },
                {"ttl": st.integers(1, 86_400)},
            )
        )
    elif kind == "refresh":
        method, path = "POST", "/auth/token/refresh"
    elif kind == "inbox":
        method, path = "POST", "/inbox/refresh"
        body = draw(
            shaped(
                {
                    "since": st.just("2026-01-01T00:00:00Z"),
                    "until": st.just("2026-01-02T00:00:00Z"),
                },
                {"deviceId": st.just(fx["device"])},
            )
        )
    else:
        method, path = "GET", "/devices"

    auth = draw(
        mostly(
            st.sampled_from([basic(fx["admin"]), f"Bearer {fx['admin']}", f"Bearer {fx['jwt']}"]),
            st.sampled_from(
                [
                    basic(fx["staff"]),
                    f"Bearer {fx['refresh']}",
                    basic("wrong"),
                    "Basic !!!",
                    "Bearer sg_wrong",
                    "Bearer a.b.c",
                    "",
                ]
            ),
        )
    )
    if kind == "refresh":
        auth = draw(mostly(st.just(f"Bearer {fx['refresh']}"), st.just(auth)))
    headers: dict[str, str] = {"HTTP_AUTHORIZATION": auth} if auth else {}
    if draw(st.booleans()):
        headers.update(draw(junk_headers))
    raw = draw(odd_body(b"" if body is None else as_json(body)))
    return {
        "method": draw(mostly(st.just(method), methods)),
        "path": BASE + path,
        "query": draw(mostly(st.just(query), raw_query)),
        "body": raw,
        "content_type": draw(mostly(st.just("application/json"), content_types)),
        "headers": headers,
    }


@given(data=st.data())
@budget(200)
def test_thirdparty_api_never_fails_and_refuses_bad_input_cleanly(
    fleet: dict[str, Any], data: st.DataObject
) -> None:
    req = data.draw(app_calls(fleet))
    before = stored()
    response = Client().generic(
        req["method"],
        req["path"],
        data=req["body"],
        content_type=req["content_type"],
        QUERY_STRING=req["query"],
        **req["headers"],
    )
    event(f"{req['method']} {req['path'].split('/v1/')[1][:20]}: {response.status_code}")
    assert response.status_code < 500, req
    if response.content:
        assert response["Content-Type"].startswith("application/json"), (response, req)
        json.loads(response.content)
    if 400 <= response.status_code < 500:
        assert stored() == before, (response.status_code, response.content, req)
