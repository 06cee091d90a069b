"""Races that only a real PostgreSQL shows."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from messaging.inbox import InboundSMS
from messaging.models import Direction, Message, OptOut
from pipeline.inbound import receive_one as receive_inbound
from tests.factories import paired_device

SENDER = "+15550001111"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_stops_at_the_same_moment_send_one_confirmation():
    device = paired_device().device
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def text(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            receive_inbound(
                InboundSMS(
                    from_number=SENDER,
                    body="STOP",
                    source="msync",
                    device=device,
                    sim_slot=1,
                    source_id=f"stop-{n}",
                )
            )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=text, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 2
    assert OptOut.objects.filter(phone=SENDER).count() == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND, to_number=SENDER).count() == 1
