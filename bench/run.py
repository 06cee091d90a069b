#!/usr/bin/env python3
"""smsgate benchmark: `python bench/run.py` (add `--quick` for a short run).

Starts the production process layout on this machine — gunicorn (sync workers) for HTTP,
`celery -A smsgate worker`, PostgreSQL and Redis — plus a small webhook receiver, then drives
load from this process over loopback and prints a table of figures with their ratios to the
baselines measured in the same server (bench/views.py). Results go to var/bench/: latest.json,
bench-<time>.json and latency.png.

The database (default postgres://postgres@127.0.0.1:5432/smsgate_bench) is dropped and
created again on every run; the Redis database (default redis://127.0.0.1:6379/12) is flushed.
Never point BENCH_DATABASE_URL / BENCH_REDIS_URL at data you want to keep.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, sys.path[0] is bench/; the project root is what the imports need.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
VENV = ROOT / ".venv"

from bench import app_phones, capacity, fanout  # noqa: E402
from bench.cpu import CpuMeter, Snapshot, server_groups  # noqa: E402
from bench.load import Load, Request, hammer, percentile, row  # noqa: E402

OUT_DIR = ROOT / "var" / "bench"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smsgate_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"

# --- bootstrap: the project's virtualenv and the bench extra ---------------------------------


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_environment() -> None:
    """Re-run under .venv's Python and install the `bench` extra's packages when missing."""
    if not _in_venv():
        python = VENV / "bin" / "python"
        if not python.exists():
            sys.exit("No .venv yet: run ./test or ./start once, then python bench/run.py.")
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    import tomllib
    from importlib import metadata

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["bench"]

    def installed(requirement: str) -> bool:
        # Each is pinned `name==version`: a .venv from before a package joined the extra (or
        # before its pin moved) lacks it, whatever else of the extra it has.
        name, _, version = requirement.partition("==")
        try:
            return metadata.version(name) == version
        except metadata.PackageNotFoundError:
            return False

    if not all(installed(r) for r in extra):
        print(f"installing the bench extra into .venv: {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *extra], check=True)


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(OUT_DIR / f"{name}.log", "wb")  # lives as long as the process
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        # Each process was started in its own session, so its group holds exactly its own
        # children (gunicorn and Celery workers): stop that group, by id.
        for proc in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set size of the process so far."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} in {timeout}s")


# --- load -----------------------------------------------------------------------------------------


def paced(
    port: int,
    make: Callable[[int, float], Request],
    *,
    rate: float,
    seconds: float,
    threads: int = 32,
) -> tuple[set[int], int, float]:
    """Open-loop load at a fixed rate: request i is due at start + i/rate whatever the answers
    before it. `make(i, due)` gets the wall-clock time the request was due, so a latency
    measured from it includes any time the request waited to be sent because the server was
    slow to answer the ones before (no coordinated omission). Returns the acknowledged
    request numbers, the failures and the seconds until the last answer."""
    total = int(rate * seconds)
    acknowledged: set[int] = set()
    failures = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    start_wall = time.time() + (start - time.perf_counter())

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(k, total, threads):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            method, path, body, headers = make(i, start_wall + i / rate)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                good = response.status == 200 and b'"success": true' in data
            except (OSError, http.client.HTTPException):
                good = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                if good:
                    acknowledged.add(i)
                else:
                    failures[0] += 1
        conn.close()

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return acknowledged, failures[0], time.perf_counter() - start


# --- the run --------------------------------------------------------------------------------


def phone(i: int) -> str:
    # 202-555-01xx style fictional numbers; all valid for phonenumbers.
    return f"+1202555{i % 10000:04d}"


def reset_stores(database_url: str, redis_url: str) -> None:
    import psycopg
    import redis

    parts = urllib.parse.urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"unexpected database name {name!r}")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(redis_url).flushdb()


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="smsgate.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CELERY_BROKER_URL=args.redis_url,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        SMSGATE_BENCH_VIEWS="true",
        SMSGATE_WEBHOOKS_ALLOW_PRIVATE="true",
        # The per-key API rate limit would cap the send figures at 20 req/s.
        SMSGATE_API_RATE_LIMIT="100000000/min",
        PATH=f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
    )
    return env


@dataclass
class Fixture:
    api_key: str
    ingest_secret: str
    batch_device: str
    batch_token: str
    sender_device: str
    empty_device: str
    empty_token: str
    queued_device: str
    queued_token: str
    fan_endpoint: str


def make_fixture(receiver_port: int, queued_polls: int) -> Fixture:
    from automation.services import create_rule
    from devices.services import register_device
    from messaging.services import send_bulk
    from smsgate.services import create_api_key
    from webhooks.services import create_endpoint

    no_limits: dict[str, int | None] = {"per_minute": None, "per_hour": None, "per_day": None}
    key = create_api_key(name="bench")
    ingest = register_device(name="ingest", sims=[{"slot": 1}], limits=no_limits)
    batch = register_device(name="batch", limits=no_limits)
    sender = register_device(name="sender", limits=no_limits)
    empty = register_device(name="poll-empty", limits=no_limits)
    queued = register_device(name="poll-queued", limits=no_limits)
    base = f"http://127.0.0.1:{receiver_port}"
    for name in ("a", "b"):
        create_endpoint(url=f"{base}/hook/{name}", format="standard", events=["sms.received"])
    fan, _ = create_endpoint(url=f"{base}/hook/fan", format="standard", events=["device.online"])
    # 20 rules the inbound traffic is evaluated against: 19 keywords that do not match and one
    # `contains` rule that tags every bench message.
    for i in range(19):
        create_rule(
            name=f"keyword {i}",
            priority=i,
            match={"keywords": [f"KW{i}", f"WORD{i}"]},
            actions=[{"type": "tag", "tag": f"kw{i}"}],
        )
    create_rule(
        name="tag bench",
        priority=50,
        match={"contains": "bench"},
        actions=[{"type": "tag", "tag": "b"}],
    )
    for start in range(0, queued_polls * 50, 1000):
        count = min(1000, queued_polls * 50 - start)
        send_bulk(
            recipients=[phone(start + j) for j in range(count)],
            body="queued for the poll benchmark",
            device_id=queued.device.pk,
            sim_slot=1,
        )
    return Fixture(
        api_key=key.plaintext,
        ingest_secret=ingest.smssync_secret,
        batch_device=batch.device.pk,
        batch_token=batch.token,
        sender_device=sender.device.pk,
        empty_device=empty.device.pk,
        empty_token=empty.token,
        queued_device=queued.device.pk,
        queued_token=queued.token,
        fan_endpoint=fan.pk,
    )


def pending_deliveries() -> int:
    from django.db import close_old_connections

    from webhooks.models import Delivery, DeliveryStatus

    close_old_connections()
    return Delivery.objects.filter(status=DeliveryStatus.PENDING).count()


def drain(timeout: float) -> float:
    """Wait until the webhook outbox is empty, so one phase's deliveries do not load the next."""
    start = time.monotonic()
    while pending_deliveries() and time.monotonic() - start < timeout:
        time.sleep(0.5)
    return time.monotonic() - start


def receiver_stats(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/stats")
    return dict(json.loads(conn.getresponse().read()))


def queue_busy(redis_client: Any) -> int:
    # kombu's Redis transport: the `celery` list holds waiting messages, the `unacked` hash the
    # ones a worker has taken and not acknowledged yet (acks_late).
    return int(redis_client.llen("celery")) + int(redis_client.hlen("unacked"))


def celery_noop_rate(count: int, redis_url: str) -> float:
    import redis

    from smsgate.celery import app

    client = redis.Redis.from_url(redis_url)
    start = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(count):
            app.send_task("celery.accumulate", args=(i,), producer=producer)
    while queue_busy(client):
        time.sleep(0.005)
    return count / (time.perf_counter() - start)


def fan_out_rate(count: int, endpoint_id: str, receiver_port: int) -> tuple[float, int]:
    from django.utils import timezone

    from webhooks.models import Delivery, Endpoint, Event, EventType
    from webhooks.publish import publish

    endpoint = Endpoint.objects.get(pk=endpoint_id)
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(type=EventType.DEVICE_ONLINE, data={"deviceId": "dev_bench", "n": i})
        for i in range(count)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            event=e,
            endpoint=endpoint,
            round_attempts=endpoint.max_attempts,
            next_attempt_at=now,
            enqueued_at=now,
        )
        for e in events
    )
    # device.online events of the bench's own phones may have reached this endpoint already.
    base = int(receiver_stats(receiver_port)["counts"].get("/hook/fan", 0))
    start_wall = time.time()
    # Published as the outbox and the sweep publish: batches of SMSGATE_WEBHOOKS_BATCH_SIZE.
    publish([d.pk for d in deliveries])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        stats = receiver_stats(receiver_port)
        got = int(stats["counts"].get("/hook/fan", 0)) - base
        if got >= count:
            return count / (float(stats["last_at"]) - start_wall), 0
        time.sleep(0.2)
    return got / (time.time() - start_wall), count - got


def app_fixture(polls: int, streams: int) -> app_phones.AppFixture:
    print(f"creating {polls + 1 + streams} app phones and their queued messages", flush=True)
    return app_phones.make_app_fixture(polls=polls, streams=streams)


def run(args: argparse.Namespace) -> dict[str, Any]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    seconds = 3.0 if args.quick else args.seconds
    latency_seconds = args.latency_seconds or (15.0 if args.quick else 60.0)
    queued_polls = 40 if args.quick else 200
    fan_count = 1000 if args.quick else 5000

    # Every stream is a socket here and one in daphne (which inherits the limit).
    old, new = app_phones.raise_open_files(2 * args.streams + 1024)
    if new != old:
        print(f"raised the open-file limit from {old} to {new}", flush=True)
    print(f"resetting {args.database_url} and {args.redis_url}", flush=True)
    reset_stores(args.database_url, args.redis_url)
    env = server_env(args)
    os.environ.update({k: env[k] for k in env if k != "PATH"})
    python = str(VENV / "bin" / "python")
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )

    import django

    django.setup()

    procs = Processes()
    web_port, receiver_port, daphne_port = free_port(), free_port(), free_port()
    try:
        receiver = procs.start(
            "receiver", [python, "-m", "bench.receiver", str(receiver_port)], env
        )
        gunicorn = procs.start(
            "gunicorn",
            [
                str(VENV / "bin" / "gunicorn"),
                "smsgate.wsgi",
                "--workers",
                str(args.web_workers),
                "--bind",
                f"127.0.0.1:{web_port}",
                "--worker-class",
                "sync",
                "--timeout",
                "120",
            ],
            env,
        )
        # The ASGI process as the Procfile runs it: the app phones' event streams.
        daphne = procs.start(
            "daphne",
            [
                str(VENV / "bin" / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(daphne_port),
                "smsgate.asgi:application",
            ],
            env,
        )
        celery = procs.start(
            "celery",
            [
                str(VENV / "bin" / "celery"),
                "-A",
                "smsgate",
                "worker",
                "--concurrency",
                str(args.celery_workers),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        )
        wait_http(receiver_port, "/stats")
        wait_http(web_port, "/healthz")
        wait_http(daphne_port, "/healthz")
        print("creating devices, 20 rules, 3 webhook endpoints and the queued messages", flush=True)
        fx = make_fixture(receiver_port, 0 if args.app_only else queued_polls)
        celery_noop_rate(20, args.redis_url)  # the worker is up and its pool warm
        app = {
            "port": web_port,
            "daphne_port": daphne_port,
            "daphne_pid": daphne.pid,
            "api_key": fx.api_key,
            "seconds": seconds,
            "concurrency": args.concurrency,
            "sends": args.wake_sends,
        }
        if args.app_only:
            results, samples = app_phones.measure(
                **app, fx=app_fixture(queued_polls, args.streams), plain_rate=None
            )
            return {"results": results, "samples": samples}
        report = measure(
            args,
            fx,
            web_port,
            receiver_port,
            seconds,
            latency_seconds,
            queued_polls,
            fan_count,
            gunicorn.pid,
            celery.pid,
            receiver.pid,
        )
        # Made now, so that the phases before run with the same data as without them.
        results, samples = app_phones.measure(
            **app,
            fx=app_fixture(queued_polls, args.streams),
            plain_rate=report["results"]["plain_json"]["value"],
        )
        for app_key, msync_key in (
            ("app_poll_empty", "poll_empty"),
            ("app_poll_50_queued", "poll_50_queued"),
        ):
            msync_rate = report["results"][msync_key]["value"]
            results[app_key]["vs_msync"] = (
                results[app_key]["value"] / msync_rate if msync_rate else None
            )
        report["results"].update(results)
        report["samples"].update(samples)
        return report
    finally:
        procs.stop_all()


def measure(
    args: argparse.Namespace,
    fx: Fixture,
    port: int,
    receiver_port: int,
    seconds: float,
    latency_seconds: float,
    queued_polls: int,
    fan_count: int,
    gunicorn_pid: int,
    celery_pid: int,
    receiver_pid: int,
) -> dict[str, Any]:
    c = args.concurrency
    meter = CpuMeter(
        {
            "web": [gunicorn_pid],
            "worker": [celery_pid],
            "receiver": [receiver_pid],
            **server_groups(),
        }
    )
    cpu: dict[str, dict[str, float]] = {}

    def costed(key: str, before: Snapshot, items: int) -> None:
        cpu[key] = meter.per_item(before, meter.snapshot(), items)

    api = {"X-API-Key": fx.api_key, "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    results: dict[str, Any] = {}
    run_id = uuid.uuid4().hex[:6]

    def step(name: str) -> None:
        print(f"  {name} …", flush=True)

    def warm(make: Callable[[int], Request]) -> None:
        hammer(port, make, concurrency=c, total=4 * c)

    # baselines
    step("plain JSON view")
    json_get: Callable[[int], Request] = lambda i: ("GET", "/bench/json", None, {})  # noqa: E731
    warm(json_get)
    before = meter.snapshot()
    plain = hammer(port, json_get, concurrency=c, seconds=seconds)
    costed("plain_json", before, plain.ok)

    def bare_make(i: int) -> Request:
        body = json.dumps({"from": phone(i), "message": f"bare {run_id} {i}"}).encode()
        return ("POST", "/bench/ingest", body, api)

    step("bare ingest view")
    warm(bare_make)
    before = meter.snapshot()
    bare = hammer(port, bare_make, concurrency=c, seconds=seconds)
    costed("bare_ingest", before, bare.ok)

    # SMSSync single-message ingest, full pipeline
    def smssync_make(i: int, text: str = "") -> Request:
        fields = {
            "secret": fx.ingest_secret,
            "from": phone(i),
            "message": text or f"bench message {i}",
            "sent_timestamp": str(int(time.time() * 1000)),
            "sent_to": "",
            "message_id": str(uuid.uuid4()),
            "device_id": "",
        }
        return ("POST", "/api/sms/smssync", urllib.parse.urlencode(fields).encode(), form)

    def smssync_ok(i: int, data: bytes) -> bool:
        return b'"success": true' in data

    step("SMSSync single-message ingest (20 rules, 2 webhooks)")
    warm(smssync_make)
    drain(120)
    # The cost of a message includes its webhooks, delivered while the phase runs and after.
    before = meter.snapshot()
    single = hammer(port, smssync_make, concurrency=c, seconds=seconds, check=smssync_ok)
    drain(300)
    costed("smssync_single", before, single.ok)

    # MSync incoming, 100 per request
    token_hdr = {"Authorization": f"Bearer {fx.batch_token}", "Content-Type": "application/json"}

    def batch_make(i: int) -> Request:
        now_ms = int(time.time() * 1000)
        messages = [
            {
                "from": phone(i * 100 + j),
                "message": f"bench batch {i} {j}",
                "timestamp": now_ms,
                "sim_slot": 1,
                "id": uuid.uuid4().hex,
            }
            for j in range(100)
        ]
        body = {"action": "incoming", "device_id": fx.batch_device, "messages": messages}
        return ("POST", "/api/sms/msync", json.dumps(body).encode(), token_hdr)

    def batch_ok(i: int, data: bytes) -> bool:
        return b'"received": 100' in data

    step("MSync incoming, batches of 100")
    before = meter.snapshot()
    batch = hammer(port, batch_make, concurrency=max(2, c // 2), seconds=seconds, check=batch_ok)
    drain(600)
    costed("msync_batch_100", before, batch.ok * 100)

    # the send API
    def send_make(i: int) -> Request:
        body = {"to": phone(i), "body": f"bench send {i}", "device_id": fx.sender_device}
        return ("POST", "/api/v1/messages", json.dumps(body).encode(), api)

    def bulk_make(i: int) -> Request:
        body = {
            "to": [phone(i * 100 + j) for j in range(100)],
            "body": f"bench bulk {i}",
            "device_id": fx.sender_device,
        }
        return ("POST", "/api/v1/messages", json.dumps(body).encode(), api)

    step("send API, single")
    before = meter.snapshot()
    send_single = hammer(port, send_make, concurrency=c, seconds=seconds)
    costed("send_single", before, send_single.ok)
    step("send API, bulk of 100")
    before = meter.snapshot()
    send_bulk = hammer(port, bulk_make, concurrency=max(2, c // 2), seconds=seconds)
    costed("send_bulk_100", before, send_bulk.ok * 100)

    # device polls
    def poll_make(device: str, token: str) -> Callable[[int], Request]:
        body = json.dumps({"action": "outgoing", "device_id": device, "limit": 50}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return lambda i: ("POST", "/api/sms/msync", body, headers)

    step("device polls, empty queue")
    before = meter.snapshot()
    poll_empty = hammer(
        port,
        poll_make(fx.empty_device, fx.empty_token),
        concurrency=c,
        seconds=seconds,
        check=lambda i, d: b'"messages": []' in d,
    )
    costed("poll_empty", before, poll_empty.ok)
    step(f"device polls, 50 queued ({queued_polls} polls)")
    before = meter.snapshot()
    poll_full = hammer(
        port,
        poll_make(fx.queued_device, fx.queued_token),
        concurrency=c,
        total=queued_polls,
        check=lambda i, d: d.count(b'"uuid"') == 50,
    )
    costed("poll_50_queued", before, poll_full.ok)

    # inbound → webhook latency at fixed rates: the one the issue names, then one this machine
    # can sustain, so the pipeline's own latency shows apart from a growing backlog.
    def latency_run(
        key: str | None, rate: float, offset: int, length: float = latency_seconds
    ) -> tuple[list[float], dict[str, Any]]:
        step(f"inbound → webhook at {rate:g} SMS/s for {length:g} s")
        drain(120)
        before = receiver_stats(receiver_port)["latency"]
        cpu_before = meter.snapshot()
        acknowledged, refused, sending = paced(
            port,
            lambda i, due: smssync_make(i, f"lat|{offset + i}|{due:.6f} bench"),
            rate=rate,
            seconds=length,
        )
        wanted = {offset + i for i in acknowledged}
        # Wait for the stragglers while they keep arriving (a backlog drains at the delivery
        # rate); what has not arrived once arrivals stop for 30 s, or after --grace, is lost.
        give_up = time.monotonic() + args.grace
        last_progress, seen_count = time.monotonic(), -1
        latencies: list[float] = []
        lost = len(wanted) * 2
        while True:
            stats = receiver_stats(receiver_port)["latency"]
            arrived = {
                p: {int(k): v for k, v in stats.get(p, {}).items()} for p in ("/hook/a", "/hook/b")
            }
            prior = {p: {int(k) for k in before.get(p, {})} for p in arrived}
            latencies = [
                v for p, seen in arrived.items() for k, v in seen.items() if k not in prior[p]
            ]
            lost = sum(1 for p in arrived for i in wanted if i not in arrived[p])
            if len(latencies) != seen_count:
                seen_count, last_progress = len(latencies), time.monotonic()
            now = time.monotonic()
            if lost == 0 or now > give_up or now - last_progress > 30:
                break
            time.sleep(0.5)
        if key is not None:
            costed(key, cpu_before, len(wanted))
        p99 = percentile(latencies, 99)
        return latencies, row(
            p99,
            "s (p99)",
            None,
            None,
            1.0,
            higher_is_better=False,
            rate=rate,
            seconds=length,
            sent=len(wanted),
            # What the server actually took in: below `rate` when it could not keep up.
            accepted_rate=len(wanted) / sending,
            refused=refused,
            deliveries_expected=len(wanted) * 2,
            lost=lost,
            p50_ms=percentile(latencies, 50) * 1000,
            p95_ms=percentile(latencies, 95) * 1000,
            p99_ms=p99 * 1000,
        )

    at_rate, at_rate_row = latency_run("webhook_latency", args.rate, 0)
    sustained, sustained_row = latency_run(
        "webhook_latency_sustained", args.sustained_rate, 10_000_000
    )
    capacity_seconds = args.capacity_seconds or (10.0 if args.quick else 30.0)
    capacity_row = capacity.highest_rate(
        lambda rate, offset: latency_run(None, rate, offset, capacity_seconds)[1],
        start=args.capacity_start,
        factor=1.4,
        ceiling=1000.0,
        target=100.0,
    )

    # fan-out against the Celery no-op baseline
    drain(args.grace)
    step(f"Celery no-op tasks ({fan_count})")
    before = meter.snapshot()
    noop = celery_noop_rate(fan_count, args.redis_url)
    costed("celery_noop", before, fan_count)
    step(f"webhook fan-out ({fan_count} events)")
    before = meter.snapshot()
    fan, fan_missing = fan_out_rate(fan_count, fx.fan_endpoint, receiver_port)
    costed("webhook_fanout", before, fan_count)
    step(f"webhook fan-out beside a slow receiver ({fan_count} events)")
    slow_fan, slow_missing = fanout.fan_out_beside_slow_rate(
        fan_count, fx.fan_endpoint, receiver_port, receiver_stats
    )

    web_pids = children(gunicorn_pid)
    celery_pids = [celery_pid, *children(celery_pid)]
    web_rss = max((peak_rss_mb(p) for p in web_pids), default=0.0)
    celery_rss = max((peak_rss_mb(p) for p in celery_pids), default=0.0)

    def errs(load: Load) -> dict[str, Any]:
        return {"errors": load.errors, "first_error": load.first_error, "requests": load.ok}

    results["plain_json"] = row(plain.rate, "req/s", None, None, None, **errs(plain))
    results["bare_ingest"] = row(bare.rate, "msg/s", "plain_json", plain.rate, None, **errs(bare))
    results["smssync_single"] = row(
        single.rate,
        "msg/s",
        "bare_ingest",
        bare.rate,
        1.0,
        p50_ms=single.pct(50) * 1000,
        p99_ms=single.pct(99) * 1000,
        **errs(single),
    )
    results["msync_batch_100"] = row(
        batch.rate * 100, "msg/s", "smssync_single", single.rate, 10.0, **errs(batch)
    )
    results["send_single"] = row(
        send_single.rate, "msg/s", "bare_ingest", bare.rate, 1.0, **errs(send_single)
    )
    results["send_bulk_100"] = row(
        send_bulk.rate * 100, "msg/s", "bare_ingest", bare.rate, 1.0, **errs(send_bulk)
    )
    results["poll_empty"] = row(
        poll_empty.rate, "req/s", "plain_json", plain.rate, 0.5, **errs(poll_empty)
    )
    results["poll_50_queued"] = row(
        poll_full.rate, "req/s", "plain_json", plain.rate, 0.5, **errs(poll_full)
    )
    results["webhook_latency"] = at_rate_row
    results["webhook_latency_sustained"] = sustained_row
    results["webhook_capacity"] = capacity_row
    results["celery_noop"] = row(noop, "tasks/s", None, None, None, tasks=fan_count)
    results["webhook_fanout"] = row(
        fan, "deliveries/s", "celery_noop", noop, 2.0, events=fan_count, missing=fan_missing
    )
    results["webhook_fanout_slow"] = row(
        slow_fan,
        "deliveries/s",
        "webhook_fanout",
        fan,
        None,
        events=fan_count,
        missing=slow_missing,
        slow_every=fanout.SLOW_EVERY,
        slow_seconds=fanout.SLOW_SECONDS,
    )
    results["web_worker_rss"] = row(web_rss, "MB", None, None, 150.0, higher_is_better=False)
    results["celery_worker_rss"] = row(celery_rss, "MB", None, None, None)
    for key, spent in cpu.items():
        results[key]["cpu_ms"] = spent
    return {
        "results": results,
        "samples": {
            "smssync_single_latency_s": single.latencies,
            "webhook_latency_s": at_rate,
            "webhook_latency_sustained_s": sustained,
        },
    }


# --- report ---------------------------------------------------------------------------------

LABELS = {
    "plain_json": "plain JSON view (baseline)",
    "bare_ingest": "bare ingest view (baseline)",
    "smssync_single": "SMSSync ingest, full pipeline",
    "msync_batch_100": "MSync incoming, batches of 100",
    "send_single": "send API, single",
    "send_bulk_100": "send API, bulk of 100",
    "poll_empty": "device poll, empty queue",
    "poll_50_queued": "device poll, 50 queued",
    "webhook_latency": "inbound → webhook latency",
    "webhook_latency_sustained": "inbound → webhook, sustained rate",
    "webhook_capacity": "highest rate with p99 ≤ 1 s",
    "celery_noop": "Celery no-op tasks (baseline)",
    "webhook_fanout": "webhook fan-out",
    "webhook_fanout_slow": "fan-out, 1 in 10 to a 1 s receiver",
    "web_worker_rss": "peak RSS, web worker",
    "celery_worker_rss": "peak RSS, Celery worker",
    **app_phones.LABELS,
}


def fmt_row(key: str, r: dict[str, Any]) -> str:
    value = f"{r['value']:,.1f} {r['unit']}"
    if key == "smssync_single":
        value += f"  (p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms)"
    if key.startswith("webhook_latency"):
        value = (
            f"p50 {r['p50_ms']:.0f} / p95 {r['p95_ms']:.0f} / p99 {r['p99_ms']:.0f} ms, "
            f"lost {r['lost']} of {r['deliveries_expected']}, "
            f"{r['accepted_rate']:.0f} of {r['rate']:g}/s taken in"
        )
    if key == "webhook_capacity":
        value = capacity.describe(r)
    if key in app_phones.LABELS:
        value = app_phones.fmt(r, key)
    ratio = f"{r['ratio']:.2f}× {r['baseline']}" if r["ratio"] is not None else ""
    target = ""
    if r["target"] is not None:
        sign = "≥" if r.get("higher_is_better", True) else "≤"
        unit = "×" if r["ratio"] is not None else f" {r['unit'].split()[0]}"
        if key == "sse_wake":
            unit = " ms (max)"  # absolute, next to a ratio
        target = f"{sign} {r['target']:g}{unit} {'ok' if r['met'] else 'MISSED'}"
    errors = f"  [{r['errors']} errors: {r['first_error']}]" if r.get("errors") else ""
    return f"{LABELS[key]:<34} {value:<52} {ratio:<26} {target}{errors}"


CPU_GROUPS = ("web", "worker", "receiver", "postgres", "redis", "load generator")


def print_cpu(results: dict[str, Any], cores: int) -> None:
    """Where each figure's CPU went, per item, and the rate that CPU alone allows on this
    machine's cores: a figure near its bound is limited by the work per item, not by waiting."""
    print()
    print(f"CPU per item (ms), all processes on the same {cores} cores")
    header = "".join(
        f"{g.replace('load generator', 'load gen'):>10}" for g in (*CPU_GROUPS, "total")
    )
    print(f"{'':<34}{header}   bound    measured")
    for key, r in results.items():
        spent = r.get("cpu_ms")
        if not spent:
            continue
        cells = "".join(f"{spent.get(g, 0.0):>10.2f}" for g in (*CPU_GROUPS, "total"))
        bound = cores * 1000 / spent["total"] if spent["total"] else float("inf")
        measured = r["accepted_rate"] if key.startswith("webhook_latency") else r["value"]
        print(f"{LABELS[key]:<34}{cells} {bound:>7,.0f}/s {measured:>7,.0f}/s")


def chart(samples: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for ax, (key, title) in zip(
        axes,
        [
            ("smssync_single_latency_s", "SMSSync ingest request latency (closed loop)"),
            ("webhook_latency_s", "inbound → webhook received (--rate)"),
            ("webhook_latency_sustained_s", "inbound → webhook received (--sustained-rate)"),
        ],
        strict=True,
    ):
        values = sorted(v * 1000 for v in samples.get(key, []))
        if values:
            ax.hist(values, bins=60, color="#4477aa")
            for q, style in ((50, "-"), (95, "--"), (99, ":")):
                ax.axvline(percentile(values, q), color="#cc3311", linestyle=style, label=f"p{q}")
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("ms")
        ax.set_ylabel("requests" if key.startswith("smssync") else "deliveries")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s phases, 15 s latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load phase")
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=0.0,
        help="length of the fixed-rate latency run (default 60, quick 15)",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="SMS/s of the latency run")
    parser.add_argument(
        "--sustained-rate",
        type=float,
        default=50.0,
        help="SMS/s of the second latency run, one this machine keeps up with",
    )
    parser.add_argument(
        "--capacity-start",
        type=float,
        default=20.0,
        help="first SMS/s of the stepped search for the highest rate with p99 ≤ 1 s (×1.4 a step)",
    )
    parser.add_argument(
        "--capacity-seconds",
        type=float,
        default=None,
        help="length of each step of that search (default 30, quick 10)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=600.0,
        help="longest wait for the last webhooks of the latency run (and for each drain)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument(
        "--streams", type=int, default=500, help="app phones holding an idle event stream"
    )
    parser.add_argument(
        "--wake-sends", type=int, default=50, help="sends timed to MessageEnqueued on a stream"
    )
    parser.add_argument(
        "--app-only",
        action="store_true",
        help="only the app phones' phases (polls, event streams) and their baseline",
    )
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--celery-workers", type=int, default=4, help="Celery pool processes")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)

    ensure_environment()
    started = datetime.now(UTC)
    report = run(args)
    report["date"] = started.isoformat(timespec="seconds").replace("+00:00", "Z")
    report["machine"] = machine()
    report["settings"] = {k: v for k, v in vars(args).items() if "url" not in k}

    print()
    print(
        f"smsgate bench, {report['date']}, {report['machine']['cpus']} CPUs, "
        f"{report['machine']['memory_gib']} GiB, load {report['machine']['load_average'][0]:.2f}"
    )
    for key, r in report["results"].items():
        print(fmt_row(key, r))
    print_cpu(report["results"], report["machine"]["cpus"] or 1)

    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (OUT_DIR / name).write_text(json.dumps(report, indent=1))
    chart(report["samples"], OUT_DIR / "latency.png")
    print(f"\nwrote {OUT_DIR / 'latest.json'} and {OUT_DIR / 'latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
