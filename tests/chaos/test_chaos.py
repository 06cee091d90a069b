"""Chaos: the production processes on real PostgreSQL and Redis, broken while phones post
inbound SMS and webhooks fan out to two endpoints. After each fault: every inbound request that
was answered with success is stored, every delivery reaches its receiver at least once (counted
by `webhook-id`), and a delivery cut short by a killed worker resumes within 30 s.

The product runs with shortened webhook timings (stack.process_env): a 5 s request timeout
(so a lease is 20 s), the sweep every 5 s with a 15 s grace, and retries after 1, 2, 4, 8 … s.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests

from tests.chaos.conftest import chaos_marks, report
from tests.chaos.stack import (
    Load,
    Phone,
    Receiver,
    Service,
    Stack,
    Web,
    children_of,
    msync_incoming,
    pid_with_socket,
    wait_until,
)

pytestmark = chaos_marks()

# Traffic before the fault, and after it while the system recovers.
WARMUP = 3.0
AFTER = 5.0
# Every delivery must have reached the receiver this long after the load stopped.
CONVERGE = 90.0
RESUME_BOUND = 30.0
SWEEP_DONE = re.compile(r"Task webhooks\.requeue_due_deliveries\[[0-9a-f-]+\] succeeded")


@dataclass
class Scenario:
    stack: Stack
    web: Web
    workers: list[Service]
    beat: Service
    receiver: Receiver
    phone: Phone
    load: Load
    started: float
    sweeps_before_fault: int
    connections: list[socket.socket] = field(default_factory=list)


def start_scenario(make_stack: Callable[..., Stack], receiver: Receiver, tag: str) -> Scenario:
    started = time.monotonic()
    stack = make_stack()
    # Workers and beat start while gunicorn boots (the only wait: its /healthz).
    workers = [stack.worker("worker1"), stack.worker("worker2")]
    beat = stack.beat()
    web = stack.gunicorn()
    for worker in workers:
        worker.wait_for_log(" ready.", timeout=60)
    beat.wait_for_log("beat: Starting", timeout=60)
    phone = stack.phone(web)
    stack.subscribe(web, receiver, "/a")
    stack.subscribe(web, receiver, "/b")
    load = Load([web.url], phone, tag=tag).start()
    wait_until(lambda: len(receiver.seen_keys()) >= 4, timeout=30, what="the first webhooks")
    time.sleep(WARMUP)
    return Scenario(stack, web, workers, beat, receiver, phone, load, started, sweeps(workers))


def sweeps(workers: list[Service]) -> int:
    """How many beat sweeps the workers have finished so far."""
    return sum(len(SWEEP_DONE.findall(w.log())) for w in workers)


def keep_flowing(scenario: Scenario, seconds: float = AFTER) -> None:
    """More traffic after the fault; some of it must be accepted again, and beat's sweep must
    be running again (beat and the workers survived the fault)."""
    before = scenario.load.accepted_count()
    time.sleep(seconds)
    wait_until(
        lambda: scenario.load.accepted_count() > before + 10,
        timeout=30,
        what="inbound requests to be accepted again",
    )
    try:
        wait_until(
            lambda: sweeps(scenario.workers) >= scenario.sweeps_before_fault + 2,
            timeout=30,
            what="the beat sweep to run again",
        )
    except AssertionError as exc:
        workers = "\n".join(
            line
            for w in scenario.workers
            for line in w.log().splitlines()
            if "requeue_due" in line or "onnection" in line or "Trying" in line
        )
        raise AssertionError(
            f"{exc}\n----- beat\n{scenario.beat.log()[-6000:]}\n----- workers\n{workers[-6000:]}"
        ) from None
    scenario.load.stop()


def assert_nothing_lost(
    scenario: Scenario, name: str, *, server_errors: bool = False, cut: bool = False
) -> None:
    """`server_errors`: the fault may make requests fail with 503 (only a database outage may: a
    broker, worker or receiver outage must not cost a phone request); `cut`: requests in flight on a
    killed web worker may lose their connection."""
    stack, receiver, load = scenario.stack, scenario.receiver, scenario.load
    load.stop()
    # Outcomes are "<protocol> <status>" or, without an answer, the exception's name. A
    # database outage may refuse requests, but only as 503 with Retry-After (never a 500).
    allowed = (" 200", " 503") if server_errors else (" 200",)
    failed = {
        k: n
        for k, n in load.outcomes.items()
        if not k.endswith(allowed) and not (cut and " " not in k)
    }
    assert not failed, f"requests failed during {name}: {failed}"
    stored = stack.inbound_bodies()
    missing = load.accepted - stored
    assert not missing, f"{len(missing)} accepted messages are not stored: {sorted(missing)[:5]}"

    def every_delivery_received() -> bool:
        deliveries = stack.deliveries()
        expected = {(path, event) for _, _, path, event in deliveries}
        return (
            len(deliveries) == 2 * len(stored)
            and all(status == "succeeded" for _, status, _, _ in deliveries)
            and expected <= receiver.seen_keys()
        )

    try:
        converged = wait_until(
            every_delivery_received, timeout=CONVERGE, what="every delivery to be received"
        )
    except AssertionError:
        deliveries = stack.deliveries()
        pending = [d for d in deliveries if d[1] != "succeeded"]
        unseen = {(p, e) for _, _, p, e in deliveries} - receiver.seen_keys()
        raise AssertionError(
            f"{len(stored)} messages, {len(deliveries)} deliveries, {len(pending)} not "
            f"succeeded ({pending[:3]}), {len(unseen)} never received"
        ) from None
    assert receiver.bad_signatures == 0
    deliveries = len(stack.deliveries())
    report(
        f"{name}: {len(load.accepted)} messages accepted and stored, {deliveries} deliveries "
        f"all received ({receiver.requests} requests); converged {converged:.1f} s after the "
        f"load stopped; scenario {time.monotonic() - scenario.started:.0f} s; "
        f"answers {dict(sorted(load.outcomes.items()))}"
    )


def hold_a_delivery(scenario: Scenario) -> dict[str, object]:
    scenario.receiver.hold_next()
    assert scenario.receiver.held.wait(timeout=30), "no delivery reached the receiver"
    return dict(scenario.receiver.held_request)


def assert_resumed(
    scenario: Scenario, held: dict[str, object], killed_at: float, name: str
) -> None:
    key = (str(held["path"]), str(held["webhook_id"]))
    receiver = scenario.receiver
    wait_until(
        lambda: key in receiver.seen_keys(),
        timeout=RESUME_BOUND + 30,
        what=f"the killed worker's delivery {key} to be received",
    )
    resumed = receiver.seen[key] - killed_at
    report(
        f"{name}: the killed worker's delivery was received again {resumed:.1f} s after the kill"
    )
    assert resumed <= RESUME_BOUND


@pytest.mark.timeout(300)
def test_a_celery_worker_killed_mid_delivery_loses_nothing(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    scenario = start_scenario(make_stack, receiver, "a")
    held = hold_a_delivery(scenario)
    trees = {w: [w.pid, *children_of(w.pid)] for w in scenario.workers}
    owner = pid_with_socket(int(str(held["port"])), [p for pids in trees.values() for p in pids])
    assert owner is not None, "could not tell which worker holds the delivery"
    [victim] = [w for w, pids in trees.items() if owner in pids]
    victim.kill()  # SIGKILL to the worker and its pool children
    killed_at = time.time()
    receiver.release()
    keep_flowing(scenario)
    assert_resumed(scenario, held, killed_at, "(a) worker SIGKILL")
    assert_nothing_lost(scenario, "(a) worker SIGKILL")


@pytest.mark.timeout(300)
def test_a_pool_process_killed_mid_delivery_loses_nothing(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    """The OOM killer's way: only the pool child dies; its parent re-queues the message."""
    scenario = start_scenario(make_stack, receiver, "a2")
    held = hold_a_delivery(scenario)
    children = [c for w in scenario.workers for c in children_of(w.pid)]
    owner = pid_with_socket(int(str(held["port"])), children)
    assert owner is not None, "could not tell which pool process holds the delivery"
    os.kill(owner, signal.SIGKILL)
    killed_at = time.time()
    receiver.release()
    keep_flowing(scenario)
    assert_resumed(scenario, held, killed_at, "(a) pool process SIGKILL")
    assert_nothing_lost(scenario, "(a) pool process SIGKILL")


@pytest.mark.timeout(300)
def test_redis_restarted_empty_loses_nothing(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    scenario = start_scenario(make_stack, receiver, "b")
    redis = scenario.stack.redis
    redis.stop()  # SHUTDOWN NOSAVE: queued and unacknowledged tasks are gone
    time.sleep(3)
    redis.start()
    keep_flowing(scenario)
    assert all(s.alive() for s in [*scenario.workers, scenario.beat])
    assert_nothing_lost(scenario, "(b) Redis restart, no persistence")


@pytest.mark.timeout(300)
def test_postgres_restarted_in_immediate_mode_loses_nothing(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    scenario = start_scenario(make_stack, receiver, "c")
    pg = scenario.stack.pg
    pg.stop("immediate")  # a crash: no checkpoint, open connections cut
    time.sleep(3)
    pg.start()
    keep_flowing(scenario)
    assert all(s.alive() for s in [*scenario.workers, scenario.beat])
    assert_nothing_lost(scenario, "(c) PostgreSQL immediate restart", server_errors=True)


# A minute-long outage: deliveries made at its start are retried through it (the shortened
# schedule's 8 attempts span 72–108 s) and none gives up.
RECEIVER_DOWN = 60.0


@pytest.mark.timeout(300)
def test_a_receiver_down_for_a_while_gets_everything_afterwards(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    scenario = start_scenario(make_stack, receiver, "d")
    receiver.stop()
    time.sleep(RECEIVER_DOWN)
    receiver.start()
    keep_flowing(scenario)
    assert_nothing_lost(scenario, f"(d) receiver down {RECEIVER_DOWN:g} s")


def cut_upload(scenario: Scenario, texts: list[str]) -> int:
    """A phone's upload in flight: the headers and half the body sent, a gunicorn worker
    reading the rest. Returns the pid of that worker."""
    port = int(urlsplit(scenario.web.url).port or 0)
    body = msync_incoming(scenario.phone, texts)
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /api/sms/msync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {scenario.phone.token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    connection.sendall(head.encode() + body[: len(body) // 2])
    client_port = connection.getsockname()[1]
    found: list[int] = []

    def accepted() -> bool:
        owner = pid_with_socket(
            port, children_of(scenario.web.service.pid), remote_port=client_port
        )
        found.extend([owner] if owner else [])
        return bool(found)

    wait_until(accepted, timeout=10, what="a gunicorn worker to take the upload")
    scenario.connections.append(connection)
    return found[0]


@pytest.mark.timeout(300)
def test_a_gunicorn_worker_killed_under_load_loses_nothing(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    scenario = start_scenario(make_stack, receiver, "e")
    master = scenario.web.service
    texts = [f"e cut upload {i}" for i in range(50)]
    owner = cut_upload(scenario, texts)
    [other, *_] = [pid for pid in children_of(master.pid) if pid != owner]
    os.kill(owner, signal.SIGKILL)
    [connection] = scenario.connections
    try:
        answer = connection.recv(1024)
    except ConnectionResetError:
        answer = b""
    connection.close()
    assert answer == b"", "the killed worker cannot have answered"
    time.sleep(2)
    os.kill(other, signal.SIGKILL)  # and the other one, while the load goes on
    wait_until(lambda: len(children_of(master.pid)) == 2, timeout=30, what="gunicorn to respawn")
    assert not scenario.stack.inbound_bodies() & set(texts), "half an upload was stored"
    # The phone got no answer, so it sends the batch again: all of it is stored, once.
    retried = requests.post(
        f"{scenario.web.url}/api/sms/msync",
        data=msync_incoming(scenario.phone, texts),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {scenario.phone.token}",
        },
        timeout=30,
    )
    assert retried.json() == {"success": True, "received": len(texts), "duplicates": 0}
    scenario.load.accepted.update(texts)
    keep_flowing(scenario)
    assert_nothing_lost(scenario, "(e) gunicorn worker SIGKILL ×2, one mid-upload", cut=True)
