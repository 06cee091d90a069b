"""Fixtures for automation: a paired phone and a way to make it receive an SMS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from automation import services as rule_services
from automation.models import Rule
from messaging.inbox import InboundResult, InboundSMS
from pipeline.inbound import receive_one as receive_inbound
from tests.factories import PairedDevice, paired_device

Receive = Callable[..., InboundResult]


@pytest.fixture
def phone(db: None) -> PairedDevice:
    return paired_device(sims=2, name="Front desk")


@pytest.fixture
def receive(phone: PairedDevice) -> Receive:
    """Store an inbound SMS the way every phone and provider endpoint does."""
    counter = iter(range(1, 1_000_000))

    def receive_(body: str, sender: str = "+15550001111", **fields: Any) -> InboundResult:
        fields.setdefault("device", phone.device)
        fields.setdefault("sim_slot", 1)
        fields.setdefault("source", "msync")
        fields.setdefault("source_id", f"test-{next(counter)}")
        return receive_inbound(InboundSMS(from_number=sender, body=body, **fields))

    return receive_


@pytest.fixture
def make_rule(db: None) -> Callable[..., Rule]:
    def make(**fields: Any) -> Rule:
        fields.setdefault("name", "A rule")
        fields.setdefault("actions", [{"type": "reply", "text": "Got it"}])
        return rule_services.create_rule(**fields)

    return make
