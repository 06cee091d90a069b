"""Scale-out: two web processes (daphne, gunicorn) and two Celery workers on one database and
one broker, with one beat. A dashboard websocket on one web process sees a message that arrived
through the other; 20 concurrent MSync polls spread over both never hand out a message twice;
each beat tick runs once, on one worker."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from tests.chaos.conftest import chaos_marks, report
from tests.chaos.stack import ADMIN_PASSWORD, Phone, Service, Stack, Web, wait_until

pytestmark = chaos_marks()

POLLERS = 20
DEVICES = 4
QUEUED = 300
SWEEP_TASK = "webhooks.requeue_due_deliveries"


def login(web: Web, username: str) -> str:
    """Log in through /login/ like a browser; returns the session cookie's value."""
    session = requests.Session()
    page = session.get(f"{web.url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    response = session.post(
        f"{web.url}/login/",
        data={"username": username, "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token[1]},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    return str(session.cookies["sessionid"])


def post_smssync(web: Web, phone: Phone, text: str) -> None:
    form = {
        "secret": phone.secret,
        "from": "+15557654321",
        "message": text,
        "sent_timestamp": str(int(time.time() * 1000)),
        "message_id": str(uuid.uuid4()),
    }
    response = requests.post(
        f"{web.url}/api/sms/smssync",
        data=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.json()["payload"]["success"] is True


def poll(web: Web, phone: Phone) -> list[str]:
    response = requests.post(
        f"{web.url}/api/sms/msync",
        data=json.dumps({"action": "outgoing", "device_id": phone.device_id, "limit": 5}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {phone.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


def see_live_event(
    socket: ClientConnection, stack: Stack, web: Web, phone: Phone, text: str
) -> float:
    """Post an inbound SMS through `web`; returns how long the socket took to announce it."""
    time.sleep(0.5)  # the consumer joins the group right after accepting
    sent = time.monotonic()
    post_smssync(web, phone, text)
    [(message_id,)] = stack.sql("SELECT id FROM messaging_message WHERE body = %s", text)
    events: list[dict[str, Any]] = []
    while time.monotonic() - sent < 15:
        event = json.loads(socket.recv(timeout=15))
        events.append(event)
        if event.get("message_id") == message_id:
            assert event["event"] == "message.created" and event["direction"] == "inbound"
            return time.monotonic() - sent
    raise AssertionError(f"no live event for {message_id}: {events}")


def sweep_runs(workers: list[Service]) -> Counter[str]:
    """Task ids of the sweep each worker received, over both workers' logs."""
    ids: Counter[str] = Counter()
    for worker in workers:
        ids.update(
            re.findall(rf"Task {re.escape(SWEEP_TASK)}\[([0-9a-f-]+)\] received", worker.log())
        )
    return ids


@pytest.mark.timeout(300)
def test_two_web_processes_and_two_workers_share_one_database_and_broker(
    make_stack: Callable[..., Stack],
) -> None:
    started = time.monotonic()
    stack = make_stack()
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    beat = stack.beat()
    daphne = stack.daphne("daphne")
    gunicorn = stack.gunicorn("gunicorn")
    for worker in workers:
        worker.wait_for_log(" ready.", timeout=60)
    beat.wait_for_log("beat: Starting", timeout=60)
    stack.env["DJANGO_SUPERUSER_PASSWORD"] = ADMIN_PASSWORD
    stack.manage("createsuperuser", "--noinput", "--username", "chaos", "--email", "c@example.com")

    # A websocket on daphne sees a message that arrived through gunicorn.
    cookie = login(daphne, "chaos")
    host = urlsplit(daphne.url).netloc
    # No per-minute pacing: the polls below must be able to drain the queue at once.
    phones = [
        stack.phone(daphne, number=f"+1555020000{n}", limits={"per_minute": None})
        for n in range(DEVICES)
    ]

    def open_socket() -> ClientConnection:
        return connect(
            f"ws://{host}/ws/inbox/",
            origin=daphne.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={cookie}"},
            proxy=None,
            open_timeout=10,
        )

    with open_socket() as socket:
        seen_after = see_live_event(socket, stack, gunicorn, phones[0], "hello from gunicorn")
    report(f"scale-out: the websocket on daphne saw the gunicorn message in {seen_after:.2f} s")

    # 20 concurrent polls over both web processes never hand out a message twice.
    numbers = [f"+1555030{n:04d}" for n in range(QUEUED)]
    result = stack.api(
        gunicorn, "POST", "/api/v1/messages", {"to": numbers, "body": "Your code is 4471"}
    )
    queued = {r["id"] for r in result["results"]}
    assert len(queued) == QUEUED
    handed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(POLLERS)

    def poller(n: int) -> None:
        web = (daphne, gunicorn)[n % 2]
        phone = phones[n % DEVICES]
        try:
            barrier.wait(timeout=30)
            while True:
                ids = poll(web, phone)
                if not ids:
                    return
                with lock:
                    handed.extend(ids)
        except BaseException as exc:
            errors.append(exc)

    polled = time.monotonic()
    threads = [threading.Thread(target=poller, args=(n,)) for n in range(POLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    twice = [pk for pk, n in Counter(handed).items() if n > 1]
    assert twice == []
    assert set(handed) == queued
    dispatched = stack.sql(
        "SELECT message_id, count(*) FROM messaging_messageevent WHERE status = 'dispatched' "
        "GROUP BY message_id HAVING count(*) > 1"
    )
    assert dispatched == []
    [(dispatched_count,)] = stack.sql(
        "SELECT count(*) FROM messaging_message WHERE status = 'dispatched' AND direction = 'outbound'"
    )
    assert dispatched_count == QUEUED
    report(
        f"scale-out: {QUEUED} queued messages handed out once each to {POLLERS} concurrent pollers "
        f"({DEVICES} devices, both web processes) in {time.monotonic() - polled:.1f} s"
    )

    # One beat: each tick of the 5 s sweep is sent once and runs once, on one of the workers.
    def beat_sends() -> int:
        return beat.log().count("Sending due task webhooks-requeue-due-deliveries")

    before = beat_sends()
    time.sleep(15)
    in_window = beat_sends() - before
    assert 2 <= in_window <= 4, in_window
    wait_until(
        lambda: sum(sweep_runs(workers).values()) == beat_sends(),
        timeout=10,
        what="every sweep beat sent to run",
    )
    runs = sweep_runs(workers)
    assert all(n == 1 for n in runs.values()), runs
    per_worker = [sum(sweep_runs([w]).values()) for w in workers]
    report(
        f"scale-out: beat sent the 5 s sweep {in_window}× in 15 s; {sum(runs.values())} sweeps "
        f"sent in all, each run exactly once (per worker: {per_worker}); "
        f"test {time.monotonic() - started:.0f} s"
    )

    # A Redis restart empties the channel layer's groups. The open socket stays open (the
    # layer retries its reads and puts its channels back in their groups), and the same
    # socket, with no reconnect, announces a message posted after Redis came back. Events
    # broadcast while the groups were gone are not replayed, hence a few tries.
    with open_socket() as socket:
        time.sleep(0.5)
        stack.redis.stop()
        time.sleep(1)
        stack.redis.start()
        restarted = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                again = see_live_event(
                    socket, stack, gunicorn, phones[1], f"hello after Redis restarted ({attempts})"
                )
                break
            except (TimeoutError, AssertionError):
                assert attempts < 3, "the open socket heard nothing after Redis restarted"
    report(
        f"scale-out: the open websocket survived a Redis restart; try {attempts} saw a new "
        f"message {time.monotonic() - restarted:.1f} s after the restart ({again:.2f} s to arrive)"
    )
