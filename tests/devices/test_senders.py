"""Senders as phones report them: national numbers, international ones without their '+', and
sender names. Numbers are stored in E.164 so replies reach them; names are never replied to."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus, urlencode

import pytest
from django.test import Client

from automation.models import RuleHit
from automation.services import create_rule
from messaging.models import Direction, InboundRequest, Message
from tests.devices.conftest import MSync
from tests.factories import PairedDevice, paired_device

pytestmark = pytest.mark.django_db

KENYAN_SIM = "+254700000001"


@pytest.fixture
def kenyan_phone(db: None) -> PairedDevice:
    paired = paired_device(sims=1)
    paired.device.sims.update(number=KENYAN_SIM)
    return paired


def smssync_inbound(paired: PairedDevice, sender: str, text: str) -> Any:
    fields = {"secret": paired.secret, "from": sender, "message": text, "message_id": sender}
    return Client().post(
        "/api/sms/smssync", urlencode(fields), content_type="application/x-www-form-urlencoded"
    )


def msync_inbound(paired: PairedDevice, sender: str, text: str) -> Any:
    return MSync(paired).post(
        "incoming",
        messages=[{"from": sender, "message": text, "timestamp": 1744029005123, "sim_slot": 1}],
    )


DOORS = {"smssync": smssync_inbound, "msync": msync_inbound}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    ("sender", "stored"),
    [
        ("254712345671", "+254712345671"),  # the country code without '+'
        ("0712345672", "+254712345672"),  # national, in the SIM's country
        ("+254712345673", "+254712345673"),
    ],
)
def test_a_sender_is_stored_in_e164_and_the_raw_log_keeps_what_was_sent(
    kenyan_phone: PairedDevice, door: str, sender: str, stored: str
) -> None:
    response = DOORS[door](kenyan_phone, sender, "Hello")

    assert response.status_code == 200
    assert Message.objects.get(direction=Direction.INBOUND).from_number == stored
    raw = bytes(InboundRequest.objects.latest("received_at").body).decode()
    assert sender in (unquote_plus(raw) if door == "smssync" else raw)


@pytest.mark.parametrize("door", DOORS)
def test_help_from_a_national_number_is_answered(kenyan_phone: PairedDevice, door: str) -> None:
    DOORS[door](kenyan_phone, "0712345672", "HELP")

    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.to_number == "+254712345672"
    assert reply.status == "queued" or reply.status == "dispatched"


def test_a_national_sender_uses_the_default_region_without_a_sim_number(
    settings: Any, phone: PairedDevice
) -> None:
    settings.SMSGATE_DEFAULT_REGION = "KE"
    phone.device.sims.update(number="")
    smssync_inbound(phone, "0712345672", "Hello")
    assert Message.objects.get().from_number == "+254712345672"


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("text", ["HELP", "STOP", "START", "balance"])
def test_a_sender_name_is_kept_and_never_replied_to(
    kenyan_phone: PairedDevice, door: str, text: str
) -> None:
    rule = {"name": "Answer everything", "match": {}, "actions": [{"type": "reply", "text": "ok"}]}
    create_rule(**rule)

    response = DOORS[door](kenyan_phone, "MPESA", text)

    assert response.status_code == 200
    assert Message.objects.get(direction=Direction.INBOUND).from_number == "MPESA"
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    outcomes = [a for hit in RuleHit.objects.all() for a in hit.actions]
    assert outcomes == [
        {
            "type": "reply",
            "status": "skipped",
            "detail": "the sender is not a phone number",
            "text": "ok",
        }
    ]


def test_the_smssync_answer_carries_no_reply_to_a_sender_name(
    kenyan_phone: PairedDevice,
) -> None:
    payload = json.loads(smssync_inbound(kenyan_phone, "MPESA", "HELP").content)["payload"]
    assert payload["success"] is True
    assert not payload.get("messages")
