"""The dashboard's live inbox socket outlives idleness and a Redis restart.

A raw websocket client (no page, so no reconnect can hide a dropped socket) stays on daphne's
/ws/inbox/ across more than 30 s of silence, which is several of the channel layer's blocking
pops, and across a restart of an empty Redis; the same socket then announces an inbound SMS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from redis import Redis
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from tests.chaos.conftest import chaos_marks, report
from tests.chaos.stack import ADMIN_PASSWORD, Stack, wait_until
from tests.chaos.test_scale_out import login, see_live_event

pytestmark = chaos_marks()

IDLE_SECONDS = 35
INBOX_GROUP_KEY = "smsgate:ch:group:inbox"


def stay_idle(socket: ClientConnection, seconds: float) -> None:
    """Nothing arrives and nothing closes the socket for `seconds`."""
    try:
        frame = socket.recv(timeout=seconds)
    except TimeoutError:
        return
    except (ConnectionClosed, OSError) as closed:
        raise AssertionError(f"the server closed the inbox socket: {closed!r}") from closed
    raise AssertionError(f"unexpected frame on an idle inbox: {frame!r}")


@pytest.mark.timeout(240)
def test_the_inbox_socket_survives_idleness_and_a_redis_restart(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    daphne = stack.daphne("daphne")
    stack.env["DJANGO_SUPERUSER_PASSWORD"] = ADMIN_PASSWORD
    stack.manage("createsuperuser", "--noinput", "--username", "chaos", "--email", "c@example.com")
    phone = stack.phone(daphne)
    cookie = login(daphne, "chaos")
    private = Redis(host="127.0.0.1", port=stack.redis.port, socket_timeout=5)

    with connect(
        f"ws://{urlsplit(daphne.url).netloc}/ws/inbox/",
        origin=daphne.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={cookie}"},
        proxy=None,
        open_timeout=10,
    ) as socket:
        stay_idle(socket, IDLE_SECONDS)

        stack.redis.stop()  # SHUTDOWN NOSAVE: the inbox group is gone with it
        time.sleep(3)
        stack.redis.start()
        restarted = time.monotonic()
        # The web process must put its socket back in the group by itself.
        wait_until(lambda: bool(private.exists(INBOX_GROUP_KEY)), timeout=30, what="re-join")
        report(f"live inbox: back in its group {time.monotonic() - restarted:.1f} s after restart")
        stay_idle(socket, 2)

        seen_after = see_live_event(socket, stack, daphne, phone, "hello after the restart")
        assert socket.state is State.OPEN
    report(f"live inbox: the same socket saw the message in {seen_after:.2f} s")
    assert daphne.service.alive()
    assert "Traceback" not in daphne.service.log(), daphne.service.log()[-3000:]
