"""Fixtures for phone tests: paired devices and clients that speak like the phone apps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import Client

from devices.signals import device_health_changed
from tests.factories import PairedDevice, paired_device

SMSSYNC_UA = "SMSSync-Android/v3.1.1"
# A phone request is one transaction, and Django captures its `BEGIN` (`BEGIN IMMEDIATE` on
# SQLite) and `COMMIT` as queries on both backends. Budgets count the statements that do work,
# so these two are added on top.
TRANSACTION_STATEMENTS = 2


@pytest.fixture
def phone(db: None) -> PairedDevice:
    return paired_device(sims=1)


@pytest.fixture
def other_phone(db: None) -> PairedDevice:
    return paired_device(sims=1)


@pytest.fixture
def smssync_client() -> Client:
    return Client(HTTP_USER_AGENT=SMSSYNC_UA)


class MSync:
    """Speaks MSync for one device: `post(action, **fields)`."""

    def __init__(self, paired: PairedDevice) -> None:
        self.paired = paired
        self.client = Client()

    def post(self, action: str, *, token: str | None = None, **fields: Any) -> Any:
        body = {"action": action, "device_id": self.paired.device.pk, **fields}
        return self.raw(json.dumps(body), token=token)

    def raw(self, body: str | bytes, *, token: str | None = None) -> Any:
        return self.client.post(
            "/api/sms/msync",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token or self.paired.token}",
        )


@pytest.fixture
def msync(phone: PairedDevice) -> MSync:
    return MSync(phone)


@contextmanager
def health_events() -> Iterator[list[tuple[str, bool]]]:
    """The (device id, online) of every device_health_changed sent inside the block."""
    seen: list[tuple[str, bool]] = []

    def receiver(sender: Any, device: Any, online: bool, **kwargs: Any) -> None:
        seen.append((device.pk, online))

    device_health_changed.connect(receiver)
    try:
        yield seen
    finally:
        device_health_changed.disconnect(receiver)
