"""Shared fuzzing setup: example budgets, and no way out to the internet.

Every fuzz test sizes its hypothesis run with `budget(n)`: `n` examples in CI, multiplied by
`SMSGATE_FUZZ_SCALE` for longer campaigns (`SMSGATE_FUZZ_SCALE=20 ./test tests/fuzz`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from messaging.models import InboundRequest


def scale() -> float:
    try:
        return max(float(os.environ.get("SMSGATE_FUZZ_SCALE", "1")), 0.01)
    except ValueError:
        return 1.0


def budget(examples: int, **extra: Any) -> settings:
    """Hypothesis settings for one fuzz test: `examples` scaled, no deadline (a shared CI
    machine is slow at times), and no health check about fixtures or slow data generation
    (each example is a real request through the database, which is the point)."""
    return settings(
        max_examples=max(1, round(examples * scale())),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        derandomize=False,
        print_blob=True,
        **extra,
    )


def _is_loopback(host: Any) -> bool:
    if host in (None, "localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fuzzed webhook URLs (`POST /webhooks/{id}/test`) must not reach the internet: every
    name but loopback fails to resolve, as on a machine without a network."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, "offline during fuzz tests")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


class RawLog:
    """Counts raw inbound log rows, to check that each fuzzed request added exactly one."""

    def __init__(self) -> None:
        self.count = InboundRequest.objects.count()

    def assert_logged(self, response: Any) -> None:
        now = InboundRequest.objects.count()
        assert now == self.count + 1, f"{now - self.count} log rows for one request"
        self.count = now
        newest = InboundRequest.objects.order_by("-received_at", "-pk").first()
        assert newest is not None and newest.status_code == response.status_code, (
            "the log row records the answer",
            newest and newest.status_code,
            response.status_code,
        )


@pytest.fixture
def raw_log(db: None) -> Iterator[RawLog]:
    yield RawLog()


def stored() -> dict[str, Any]:
    """What a request could store, to check that one refused with a 4xx stored nothing: the
    messages and their history, the SIMs and the app fields of the devices, the webhook
    endpoints, the phone settings and the third-party API's own rows. A device's last-seen
    time and online flag are left out: a call with a valid token is a heartbeat even when its
    body is refused."""
    from devices.models import Device, PhoneSettings, Sim
    from messaging.models import Message, MessageEvent
    from thirdparty.models import AppMessage, RevokedToken
    from webhooks.models import Endpoint

    return {
        "messages": sorted(Message.objects.values_list("id", "status", "body", "device_id")),
        "message_events": MessageEvent.objects.count(),
        "sims": sorted(Sim.objects.values_list("device_id", "slot", "number")),
        "devices": sorted(
            Device.objects.values_list(
                "id", "name", "app_token_hash", "app_version", "app_signing_key_encrypted"
            )
        ),
        "endpoints": sorted(Endpoint.objects.values_list("id", "url", "events", "filters")),
        "settings": [s.values for s in PhoneSettings.objects.order_by("pk")],
        "revoked": RevokedToken.objects.count(),
        "app_messages": AppMessage.objects.count(),
    }
