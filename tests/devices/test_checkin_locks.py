"""Uploads from one phone do not queue behind each other on the device row; polls still do.

A poll that claims messages keeps the device row locked until it commits, so the pacing counts
it read stay exact. A phone uploading messages or reports claims nothing: it must not hold the
row, or every upload of one phone waits for the previous one to commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import DatabaseError, connection, transaction

from devices.models import Device
from phones import checkin as checkins
from tests.devices.conftest import MSync
from tests.factories import paired_device

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def row_is_free(device_id: str) -> bool:
    """From another connection: can the device row be locked right now?"""
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with transaction.atomic():
                Device.objects.select_for_update(nowait=True).get(pk=device_id)
            outcome.append(True)
        except DatabaseError:
            outcome.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return outcome == [True]


def while_checked_in(check_in: Callable[[], object], device_id: str) -> bool:
    with transaction.atomic():
        assert check_in() is not None
        return row_is_free(device_id)


def test_an_upload_leaves_the_device_row_free_for_the_phones_next_request() -> None:
    phone = paired_device()
    # The writes (once per resolution and credential, and they lock); then reads.
    checkins.check_in_by_token(phone.token)
    checkins.check_in_by_secret(phone.secret)

    assert while_checked_in(
        lambda: checkins.check_in_by_token(phone.token, lock=False), phone.device.pk
    )
    assert while_checked_in(
        lambda: checkins.check_in_by_secret(phone.secret, lock=False), phone.device.pk
    )


def test_a_poll_that_claims_keeps_the_device_row_locked_until_it_commits() -> None:
    phone = paired_device()
    checkins.check_in_by_token(phone.token)

    assert not while_checked_in(lambda: checkins.check_in_by_token(phone.token), phone.device.pk)


def test_msync_locks_the_device_only_for_outgoing(monkeypatch: pytest.MonkeyPatch) -> None:
    phone = paired_device()
    seen: list[bool] = []
    real = checkins.check_in_by_token

    def spy(token: str, **kwargs: object) -> object:
        seen.append(bool(kwargs.get("lock", True)))
        return real(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checkins, "check_in_by_token", spy)
    client = MSync(phone)
    client.post("incoming", messages=[{"from": "+15551230001", "message": "hi"}])
    client.post("outgoing", limit=5)
    assert seen == [False, True]
