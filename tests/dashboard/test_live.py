"""The inbox websocket: session auth, origin check, and relaying inbox events."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from messaging import services

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def _session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


def _communicator(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    from smsgate.asgi import application

    return WebsocketCommunicator(
        application, "/ws/inbox/", headers=[(b"host", b"127.0.0.1"), *headers]
    )


def _connects(*headers: tuple[bytes, bytes]) -> bool:
    async def run() -> bool:
        communicator = _communicator(*headers)
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    return async_to_sync(run)()


@pytest.fixture
def staff(transactional_db: None) -> User:
    return User.objects.create_user("sam", password="correct horse battery")


def test_a_websocket_without_a_session_is_refused() -> None:
    assert _connects(ORIGIN) is False


def test_a_websocket_with_a_forged_session_is_refused() -> None:
    assert _connects(ORIGIN, (b"cookie", b"sessionid=forged")) is False


def test_a_websocket_from_a_foreign_origin_is_refused(staff: User) -> None:
    assert _connects((b"origin", b"https://evil.example"), _session_cookie(staff)) is False


def test_a_deactivated_user_is_refused(staff: User) -> None:
    cookie = _session_cookie(staff)
    User.objects.filter(pk=staff.pk).update(is_active=False)
    assert _connects(ORIGIN, cookie) is False


def test_a_logged_in_user_receives_inbox_events(staff: User) -> None:
    cookie = _session_cookie(staff)

    async def run() -> dict[str, Any]:
        communicator = _communicator(ORIGIN, cookie)
        connected, _ = await communicator.connect()
        assert connected
        from channels.db import database_sync_to_async

        message = await database_sync_to_async(services.send_message)(
            to="+15550000020", body="hello"
        )
        event = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return {"event": event, "message": message}

    result = async_to_sync(run)()
    message = result["message"]
    assert result["event"] == {
        "event": "message.created",
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": "queued",
        "direction": "outbound",
    }


def test_a_batched_broadcast_reaches_the_socket_as_one_frame_per_update(staff: User) -> None:
    cookie = _session_cookie(staff)
    payloads = [
        {"message_id": f"msg_{n}", "conversation_id": "cnv_x", "status": "dispatched"}
        for n in range(3)
    ]

    async def run() -> list[dict[str, Any]]:
        communicator = _communicator(ORIGIN, cookie)
        connected, _ = await communicator.connect()
        assert connected
        from channels.db import database_sync_to_async

        from messaging.live import broadcast_inbox_many

        await database_sync_to_async(broadcast_inbox_many)("message.status", payloads)
        frames = [await communicator.receive_json_from(timeout=5) for _ in payloads]
        await communicator.disconnect()
        return frames

    assert async_to_sync(run)() == [{"event": "message.status", **p} for p in payloads]


@pytest.mark.redis
def test_events_from_another_process_reach_the_socket_through_redis(staff: User) -> None:
    """Several web and worker processes: a broadcast from one reaches sockets on another."""
    cookie = _session_cookie(staff)
    script = (
        "import django; django.setup(); "
        "from messaging.live import broadcast_inbox; "
        "broadcast_inbox('message.status', {'message_id': 'msg_x', 'conversation_id': 'cnv_x', "
        "'status': 'delivered', 'direction': 'outbound'})"
    )

    async def run() -> dict[str, Any]:
        communicator = _communicator(ORIGIN, cookie)
        connected, _ = await communicator.connect()
        assert connected
        from channels.db import database_sync_to_async

        await database_sync_to_async(subprocess.run)(
            [sys.executable, "-c", script], check=True, timeout=60
        )
        # Generous: on a loaded CI machine the first read can take a while.
        event = await communicator.receive_json_from(timeout=30)
        await communicator.disconnect()
        return event

    assert async_to_sync(run)() == {
        "event": "message.status",
        "message_id": "msg_x",
        "conversation_id": "cnv_x",
        "status": "delivered",
        "direction": "outbound",
    }


def test_what_a_client_sends_is_ignored(staff: User) -> None:
    cookie = _session_cookie(staff)

    async def run() -> bool:
        communicator = _communicator(ORIGIN, cookie)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data="{not json")
        await communicator.send_to(bytes_data=b"\x00\x01")
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(run)() is True
