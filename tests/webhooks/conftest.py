"""Fixtures for the webhooks tests: a real local HTTP receiver, endpoints, inbound messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient

from messaging.inbox import InboundSMS
from messaging.models import Message
from pipeline.inbound import receive_one as receive_inbound
from tests.factories import PairedDevice, paired_device


@pytest.fixture
def allow_private(settings: Any) -> None:
    """The receiver is a local server on loopback, which the SSRF guard refuses by default."""
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def phone(db: None) -> PairedDevice:
    return paired_device(sims=2)


@pytest.fixture
def receive(phone: PairedDevice) -> Callable[..., Message]:
    """Store an inbound SMS the way the phone endpoints do (in one transaction)."""

    def receive_sms(
        body: str = "Meter 4471 reading 0032",
        sender: str = "+15551230001",
        sim_slot: int = 1,
        **fields: Any,
    ) -> Message:
        sim = phone.device.sims.get(slot=sim_slot)
        result = receive_inbound(
            InboundSMS(
                from_number=sender,
                body=body,
                source="msync",
                to_number=sim.number,
                device=phone.device,
                sim_slot=sim_slot,
                **fields,
            )
        )
        return result.message

    return receive_sms


@pytest.fixture
def create_webhook(admin_client: APIClient, allow_private: None) -> Callable[..., dict[str, Any]]:
    def create(url: str, **fields: Any) -> dict[str, Any]:
        response = admin_client.post("/api/v1/webhooks", {"url": url, **fields}, format="json")
        assert response.status_code == 201, response.json()
        return dict(response.json())

    return create


@pytest.fixture
def receiver(httpserver: HTTPServer) -> HTTPServer:
    return httpserver
