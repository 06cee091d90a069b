"""Chaos: one of two phones stops answering in the middle of a load of unpinned messages
(issue 14, CONTRACT.md §13, docs/routing.md#re-routing).

Two simulated MSync phones (`manage.py simulate_device`, real processes polling over HTTP) at 60
segments a minute each, and a Twilio app pointed at a local fake Twilio as the routing policy's
fallback. The test sends its messages through the API; half-way through, phone A's simulator
is SIGKILLed. Its last act was one more poll whose messages it never reported (the test makes
that poll itself, so there always are such messages): those stay `dispatched`, are flagged
stale and are never sent again (the phone may have sent them). Everything else must end
delivered (the phones report delivery) or sent (the fake provider sends no delivery report),
through B or the provider after A went offline and the re-route sweep moved what waited on
A, or on a paced-out B; each message is sent exactly once, counted at the receivers: the
simulators' logs and the fake provider's request log.

Short settings make it fast: A is offline 5 s after its last call, a message waiting that long
on a line that will not take it moves. Beat's own intervals (the heartbeat check every 30 s,
the re-route sweep every 15 s) are fixed, so the test also runs those sweeps through the
workers every second while it waits, as a faster beat would.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from celery import Celery

from tests.chaos.conftest import chaos_marks, report
from tests.chaos.stack import Phone, Service, Stack, Web, free_port, wait_until

pytestmark = chaos_marks()

MESSAGES = 150
BATCH = 5
EVERY = 0.25  # seconds between batches: 150 messages in about 10 s
KILL_AT = MESSAGES // 2
# Sent to phone A by name with failover after its simulator died: queued on A while it still
# counts as online, so some are handed out by A's last poll and the rest wait on a dead phone.
TO_DEAD_PHONE = 5
LAST_POLL = 3
PER_MINUTE = 60
OFFLINE_AFTER = 5
REROUTE_AFTER = 5
DISPATCH_TIMEOUT = 10
DRAIN_BOUND = 60.0
TWILIO_SID = "AC" + "c" * 32
SENT_LINE = re.compile(r"^send to (\+\d+): ", re.MULTILINE)
SWEEPS = (
    "devices.check_device_heartbeats",
    "messaging.reroute_waiting_messages",
    "devices.flag_stale_dispatches",
)


class FakeTwilio:
    """Twilio's Messages endpoint on loopback: accepts every send and records its `To`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = parse_qs(body.decode())
                with fake.lock:
                    fake.sent.append(form["To"][0])
                    n = len(fake.sent)
                answer = json.dumps({"sid": f"SM{n:032x}", "status": "queued"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def numbers(self) -> list[str]:
        with self.lock:
            return list(self.sent)


class Sweeper:
    """Sends the sweeps to the workers every second, through the broker (no beat change)."""

    def __init__(self, broker_url: str) -> None:
        self.client = Celery("chaos-routing", broker=broker_url, set_as_current=False)
        self.client.conf.task_serializer = "json"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            for task in SWEEPS:
                try:
                    self.client.send_task(task)
                except Exception:  # a broker hiccup: the next second tries again
                    pass


def simulator(stack: Stack, web: Web, name: str, phone: Phone) -> Service:
    return stack.spawn(
        name,
        [
            sys.executable, "manage.py", "simulate_device", "--server", web.url, "--device-id",
            phone.device_id, "--token", phone.token, "--interval", "0.5",
        ],
    )  # fmt: skip


def sent_by(service: Service) -> list[str]:
    """The numbers a simulator printed as sent (it prints before it reports)."""
    return SENT_LINE.findall(service.log())


def receivers(sim_a: Service, sim_b: Service, fake: FakeTwilio, handed: list[str]) -> Counter[str]:
    """How many times each number was sent to, over both phones and the provider."""
    return Counter([*sent_by(sim_a), *handed, *sent_by(sim_b), *fake.numbers()])


def send(stack: Stack, web: Web, numbers: list[str], **fields: Any) -> None:
    body = {"to": numbers, "body": "Your order has shipped", **fields}
    result = stack.api(web, "POST", "/api/v1/messages", body)
    assert all(r.get("status") == "queued" for r in result["results"]), result


def last_poll(web: Web, phone: Phone) -> list[str]:
    """The dying phone's last MSync poll: it takes messages and reports nothing on them."""
    response = requests.post(
        f"{web.url}/api/sms/msync",
        json={"action": "outgoing", "device_id": phone.device_id, "limit": LAST_POLL},
        headers={"Authorization": f"Bearer {phone.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [m["to"] for m in response.json()["messages"]]


def outbound(stack: Stack) -> dict[str, tuple[str, str | None, str | None, bool]]:
    """Number → (status, device, app, stale) of every outbound message."""
    rows = stack.sql(
        "SELECT to_number, status, device_id, app_id, stale FROM messaging_message "
        "WHERE direction = 'outbound'"
    )
    return {to: (status, device, app, stale) for to, status, device, app, stale in rows}


@pytest.mark.timeout(240)
def test_a_phone_that_stops_answering_mid_load_loses_and_repeats_nothing(
    make_stack: Callable[..., Stack],
) -> None:
    started = time.monotonic()
    fake = FakeTwilio()
    fake.start()
    stack = make_stack(
        SMSGATE_TWILIO_API_URL=fake.url,
        SMSGATE_DEVICE_OFFLINE_AFTER=str(OFFLINE_AFTER),
        SMSGATE_REROUTE_AFTER=str(REROUTE_AFTER),
        SMSGATE_DISPATCH_TIMEOUT=str(DISPATCH_TIMEOUT),
    )
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    beat = stack.beat()
    web = stack.gunicorn()
    app = stack.api(
        web,
        "POST",
        "/api/v1/apps",
        {
            "provider": "twilio",
            "name": "fallback",
            "credentials": {"account_sid": TWILIO_SID, "auth_token": "t" * 32},
            "numbers": ["+15550109999"],
        },
    )
    assert app["can_send"] is True
    # The saved policy, as an admin sets it (every process reads it per decision).
    policy = stack.api(
        web,
        "PUT",
        "/api/v1/routing",
        {"fallback_app_id": app["id"], "reroute_after": REROUTE_AFTER},
    )
    assert policy["fallback_app_id"] == app["id"] and policy["max_attempts"] == 3, policy
    limits = {"per_minute": PER_MINUTE}
    phone_a = stack.phone(web, number="+15550100001", limits=limits)
    phone_b = stack.phone(web, number="+15550100002", limits=limits)
    sim_a = simulator(stack, web, "phone-a", phone_a)
    sim_b = simulator(stack, web, "phone-b", phone_b)
    for worker in workers:
        worker.wait_for_log(" ready.", timeout=60)
    beat.wait_for_log("beat: Starting", timeout=60)
    wait_until(
        lambda: stack.sql("SELECT count(*) FROM devices_device WHERE online")[0][0] == 2,
        timeout=60,
        what="both simulated phones to come online",
    )
    sweeper = Sweeper(stack.redis.url).start()
    try:
        numbers = [f"+1555040{n:04d}" for n in range(MESSAGES + TO_DEAD_PHONE)]
        load_started = time.monotonic()
        handed_unreported: list[str] = []
        killed_at, killed_wall = load_started, time.time()
        for first in range(0, MESSAGES, BATCH):
            send(stack, web, numbers[first : first + BATCH])
            if first + BATCH == KILL_AT:
                sim_a.kill()  # SIGKILL: no goodbye, no more polls or reports
                killed_at, killed_wall = time.monotonic(), time.time()
                send(stack, web, numbers[MESSAGES:], device_id=phone_a.device_id, failover=True)
                handed_unreported = last_poll(web, phone_a)
            time.sleep(EVERY)
        load_done = time.monotonic()

        every = set(numbers)

        def drained_numbers(stack: Stack) -> set[str]:
            return {
                to
                for to, (status, device, app_id, stale) in outbound(stack).items()
                if status == "delivered"
                or (status == "sent" and app_id)
                # A can die between its "sent" and "delivered" reports, or before either.
                or (status == "sent" and device == phone_a.device_id)
                or (status == "dispatched" and stale and device == phone_a.device_id)
            }

        def drained() -> bool:
            return drained_numbers(stack) == every

        try:
            drain = wait_until(drained, timeout=DRAIN_BOUND, what="every message to settle")
        except AssertionError:
            names = {phone_a.device_id: "A", phone_b.device_id: "B", app["id"]: "app"}
            left = Counter(
                (s, names.get(d or ""), names.get(a or ""), st)
                for to, (s, d, a, st) in outbound(stack).items()
                if to not in drained_numbers(stack)
            )
            taken = receivers(sim_a, sim_b, fake, handed_unreported)
            raise AssertionError(
                f"not settled after {DRAIN_BOUND:g} s: (status, device, app, stale): {left}; "
                f"sent twice: {[to for to, n in taken.items() if n > 1]}"
            ) from None
        # Whatever a sweep still had in hand has finished: nothing moves after this.
        time.sleep(2)
    finally:
        sweeper.stop()
        fake.stop()
    assert sim_b.alive(), sim_b.log()[-3000:]

    rows = outbound(stack)
    # What A took and never reported stays dispatched on A, flagged stale, never moved.
    unreported = {to for to, (status, *_) in rows.items() if status == "dispatched"}
    assert set(handed_unreported) <= unreported and len(handed_unreported) == LAST_POLL
    for to in unreported:
        assert rows[to][1] == phone_a.device_id and rows[to][3] is True, (to, rows[to])

    # Counted at the receivers: each message reached exactly one of them, exactly once.
    via_a, via_b, via_provider = sent_by(sim_a), sent_by(sim_b), fake.numbers()
    taken = receivers(sim_a, sim_b, fake, handed_unreported)
    twice = {to: n for to, n in taken.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    # Only a message A's simulator was handed in the instant of the kill, before it printed
    # it, is in no log; the server has it as dispatched on A.
    assert every - set(taken) <= unreported, f"never sent: {sorted(every - set(taken))[:5]}"
    assert not unreported & (set(via_b) | set(via_provider))
    # The others: delivered by the phone that sent them, or sent by the provider.
    for to in via_b:
        assert rows[to][:2] == ("delivered", phone_b.device_id), (to, rows[to])
    for to in via_provider:
        assert rows[to][0] == "sent" and rows[to][2] == app["id"], (to, rows[to])
    for to in set(via_a) - unreported:
        assert rows[to][0] in ("sent", "delivered"), (to, rows[to])
        assert rows[to][1] == phone_a.device_id, (to, rows[to])

    moves = stack.sql(
        "SELECT m.to_number, e.detail FROM messaging_messageevent e "
        "JOIN messaging_message m ON m.id = e.message_id WHERE e.status = 'rerouted'"
    )
    moved = {to for to, _ in moves}
    # (A message may have moved onto A before A's last poll took it: only later moves count.)
    moved_after_dispatch = stack.sql(
        "SELECT m.to_number FROM messaging_messageevent e JOIN messaging_message m "
        "ON m.id = e.message_id WHERE e.status = 'rerouted' AND m.status = 'dispatched' "
        "AND e.at >= m.dispatched_at"
    )
    assert not moved_after_dispatch, "a dispatched message without a report was moved"
    why = Counter(
        "offline" if "offline" in detail else "paced out" if "paced out" in detail else detail
        for _, detail in moves
    )
    # "<from line> → <to line>: <why>": moved off A because A went offline.
    offline_moves = [
        to
        for to, detail in moves
        if detail.startswith(f"device {phone_a.device_id}") and "offline" in detail
    ]
    assert offline_moves, "nothing waiting on the dead phone was moved"
    [(failed,)] = stack.sql(
        "SELECT count(*) FROM messaging_message WHERE direction = 'outbound' AND status = 'failed'"
    )
    assert failed == 0
    delivered = len(every) - len(unreported)
    [(went_offline,)] = stack.sql(
        "SELECT online_changed_at FROM devices_device WHERE id = %s AND NOT online",
        phone_a.device_id,
    )
    offline = went_offline.timestamp() - killed_wall
    report(
        f"routing: {len(every)} unpinned messages, phone A SIGKILLed after {KILL_AT} "
        f"({killed_at - load_started:.1f} s into a {load_done - load_started:.1f} s load); "
        f"{delivered} delivered or sent, each once: {len(set(via_a) - unreported)} by A before "
        f"it died, {len(via_b)} by B, {len(via_provider)} by the fallback provider; "
        f"{len(unreported)} handed to A and never reported stay dispatched+stale, not re-sent; "
        f"{len(moved)} messages moved ({len(moves)} moves: {dict(why)}, "
        f"{len(set(offline_moves))} off the dead phone); A offline {offline:.1f} s after the "
        f"kill; drained {drain:.1f} s after the load; "
        f"scenario {time.monotonic() - started:.0f} s"
    )
