"""Who is woken when a message is queued: app phones' streams, never an SMSSync or MSync phone
(a group send costs a channel-layer round trip no one would hear)."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.services import cancel_message, send_message
from tests.factories import paired_device
from tests.phones.conftest import AppPhone

pytestmark = pytest.mark.django_db

NUMBER = "+14155550111"


@pytest.fixture
def woken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        "messaging.live.notify_phones",
        lambda event, data=None, *, device_ids=None: calls.append((event, data, device_ids)),
    )
    return calls


def test_a_message_for_an_app_phone_wakes_its_stream(
    registered: AppPhone, woken: list[tuple[Any, ...]]
) -> None:
    send_message(to=NUMBER, body="hi", device_id=registered.device.pk)
    assert woken == [("MessageEnqueued", None, {registered.device.pk})]


def test_a_message_for_an_msync_phone_wakes_no_one(woken: list[tuple[Any, ...]]) -> None:
    phone = paired_device()
    send_message(to=NUMBER, body="hi", device_id=phone.device.pk)
    assert woken == []


def test_cancelling_tells_the_phone_that_holds_the_message(
    registered: AppPhone, woken: list[tuple[Any, ...]]
) -> None:
    message = send_message(to=NUMBER, body="hi", device_id=registered.device.pk)
    cancel_message(message_id=message.pk)
    assert woken[-1] == ("MessageCancelled", {"messageId": message.pk}, [registered.device.pk])


def test_a_message_for_the_shared_pool_wakes_every_app_phone(
    woken: list[tuple[Any, ...]],
) -> None:
    paired_device(online=False)  # no phone online: the message waits in the shared queue
    message = send_message(to=NUMBER, body="hi")
    assert message.device_id is None
    assert woken == [("MessageEnqueued", None, None)]
