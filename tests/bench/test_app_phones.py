"""The app phones' bench phases (bench/app_phones.py, bench/streams.py) at a tiny scale: the phones it creates
are real app phones to the mobile API, and its answer checks hold on real answers. The streams
phase needs daphne and is run by the bench itself."""

from __future__ import annotations

import queue
import resource

import pytest
from django.test import Client

from bench import app_phones, streams
from devices.models import Device

pytestmark = pytest.mark.django_db


def _get(request: app_phones.Request) -> tuple[int, bytes]:
    method, path, body, headers = request
    response = Client().generic(
        method, path, data=body or b"", HTTP_AUTHORIZATION=headers["Authorization"]
    )
    return response.status_code, response.content


def test_the_fixture_phones_pull_their_queued_messages_with_their_tokens() -> None:
    fx = app_phones.make_app_fixture(polls=2, streams=3)

    assert Device.objects.exclude(app_token_hash=None).count() == 1 + 2 + 3
    for phone in fx.queued:
        status, data = _get(app_phones.poll_request(phone))
        assert status == 200
        assert app_phones.polled(app_phones.QUEUED_PER_POLL)(0, data)
    status, data = _get(app_phones.poll_request(fx.empty))
    assert status == 200 and app_phones.polled(0)(0, data)
    assert not app_phones.polled(1)(0, data)


def test_the_open_file_limit_is_raised_only_up_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        old, new = app_phones.raise_open_files(soft + 1)
        assert old == soft
        assert new == (soft + 1 if hard == resource.RLIM_INFINITY or soft < hard else soft)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == new
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_wake_figures_count_a_send_without_its_event_as_missed() -> None:
    held = streams.Streams(port=1)
    phone = streams.AppPhone(device_id="dev_x", token="t")
    held.events[phone.device_id] = queue.Queue()

    def send(p: streams.AppPhone, i: int) -> str:
        if i == 0:
            held.events[p.device_id].put((0.0, "SettingsUpdated"))
            held.events[p.device_id].put((0.0, streams.ENQUEUED))
            return ""
        return "500 b'down'"

    wakes = streams.wake_ups(held, [phone], send, count=3, timeout=0.1)

    assert len(wakes.latencies) == 1 and wakes.missed == 2
    assert wakes.first_error == "500 b'down'"
