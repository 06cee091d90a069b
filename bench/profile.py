#!/usr/bin/env python3
"""Where the time goes: `python bench/profile.py [smssync|msync|send|bare|bulk|poll|deliver|deliver-batch] [-n N]`.

Runs the same requests as bench/run.py in this one process (Django's test client, same
PostgreSQL/Redis bench databases, reset first), prints the SQL queries per request and a
pyinstrument profile of N requests. Webhook deliveries are profiled by running the Celery task
body in process against a local receiver: one delivery per task (`deliver`), or a batch of
SMSGATE_WEBHOOKS_BATCH_SIZE per task as webhooks/publish.py publishes them (`deliver-batch`,
N batches).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run as bench  # noqa: E402
from bench.cpu import CpuMeter, server_groups  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "what",
        choices=["smssync", "msync", "send", "bare", "bulk", "poll", "deliver", "deliver-batch"],
    )
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument(
        "--plain",
        action="store_true",
        help="no profiler: this process's CPU time per request, for comparing two commits",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="cProfile over this process's CPU time (pyinstrument's profile is wall time, "
        "which on a busy machine is mostly waiting)",
    )
    # As bench/run.py: BENCH_DATABASE_URL and BENCH_REDIS_URL pick other stores (both are reset).
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", bench.DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", bench.DEFAULT_REDIS_URL)
    )
    args = parser.parse_args()
    bench.ensure_environment()

    bench.reset_stores(args.database_url, args.redis_url)
    env = bench.server_env(args)
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ.update({k: v for k, v in env.items() if k != "PATH"})
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # Not at the top: until sys.path[0] is fixed above, `profile` would be this file.
    import cProfile
    import pstats

    import django

    django.setup()
    from django.conf import settings as django_settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    receiver = None
    port = bench.free_port()
    if args.what.startswith("deliver"):
        receiver = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)], cwd=ROOT)
        bench.wait_http(port, "/stats")
    try:
        fx = bench.make_fixture(port, queued_polls=args.n if args.what == "poll" else 0)
        client = Client()
        api = {"X-API-Key": fx.api_key}

        def smssync(i: int) -> None:
            fields = {
                "secret": fx.ingest_secret,
                "from": bench.phone(i),
                "message": f"bench message {i}",
                "sent_timestamp": str(int(time.time() * 1000)),
                "message_id": str(uuid.uuid4()),
            }
            r = client.post(
                "/api/sms/smssync",
                urllib.parse.urlencode(fields),
                content_type="application/x-www-form-urlencoded",
            )
            assert r.status_code == 200 and b'"success": true' in r.content, r.content

        def msync(i: int) -> None:
            body = {
                "action": "incoming",
                "device_id": fx.batch_device,
                "messages": [
                    {
                        "from": bench.phone(i * 100 + j),
                        "message": f"bench batch {i} {j}",
                        "timestamp": int(time.time() * 1000),
                        "sim_slot": 1,
                        "id": uuid.uuid4().hex,
                    }
                    for j in range(100)
                ],
            }
            r = client.post(
                "/api/sms/msync",
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {fx.batch_token}",
            )
            assert r.status_code == 200, r.content

        def send(i: int) -> None:
            body = {"to": bench.phone(i), "body": f"bench {i}", "device_id": fx.sender_device}
            r = client.post("/api/v1/messages", body, content_type="application/json", headers=api)
            assert r.status_code == 202, r.content

        def bare(i: int) -> None:
            # bench/views.py's bare ingest, the floor `send` is compared with (bench/run.py).
            body = {"from": bench.phone(i), "message": f"bare {i}"}
            r = client.post("/bench/ingest", body, content_type="application/json", headers=api)
            assert r.status_code == 200, r.content

        def bulk(i: int) -> None:
            body = {
                "to": [bench.phone(i * 100 + j) for j in range(100)],
                "body": f"bench {i}",
                "device_id": fx.sender_device,
            }
            r = client.post("/api/v1/messages", body, content_type="application/json", headers=api)
            assert r.status_code == 202, r.content

        def poll(i: int) -> None:
            body = {"action": "outgoing", "device_id": fx.queued_device, "limit": 50}
            r = client.post(
                "/api/sms/msync",
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {fx.queued_token}",
            )
            assert r.status_code == 200, r.content

        deliveries: list[str] = []
        size = int(django_settings.SMSGATE_WEBHOOKS_BATCH_SIZE)
        if args.what.startswith("deliver"):
            from webhooks.models import Delivery

            # One SMSSync message makes a delivery per endpoint (2); the batch mode needs a
            # batch of fresh deliveries per task run, plus the two warm-up runs.
            messages = args.n if args.what == "deliver" else (args.n + 2) * size // 2 + 1
            for i in range(messages):
                smssync(i)
            deliveries = list(Delivery.objects.values_list("pk", flat=True))

        def deliver(i: int) -> None:
            from webhooks.tasks import deliver_webhook

            deliver_webhook.run(deliveries[i % len(deliveries)])

        def deliver_batch(i: int) -> None:
            from webhooks.tasks import deliver_webhooks

            # The warm-up runs (10_000, 10_001) take the last batches.
            n = i if i < args.n else args.n + i - 10_000
            deliver_webhooks.run(deliveries[n * size : (n + 1) * size])

        action = {
            "smssync": smssync,
            "msync": msync,
            "send": send,
            "bare": bare,
            "bulk": bulk,
            "poll": poll,
            "deliver": deliver,
            "deliver-batch": deliver_batch,
        }[args.what]
        action(10_000)  # warm: imports, caches, first connection
        with CaptureQueriesContext(connection) as queries:
            action(10_001)
        print(f"{args.what}: {len(queries)} SQL queries for one request")
        for q in queries.captured_queries:
            print("   ", q["sql"][:160])
        groups = server_groups()
        if receiver is not None:
            groups["receiver"] = [receiver.pid]
        meter = CpuMeter(groups)
        profiler = Profiler(interval=0.0005)
        cpu_profile = cProfile.Profile(time.process_time)
        before = meter.snapshot()
        start = time.perf_counter()
        own_cpu = time.process_time()
        with contextlib.nullcontext() if args.plain else cpu_profile if args.cpu else profiler:
            for i in range(args.n):
                action(i)
        elapsed = time.perf_counter() - start
        own_cpu = time.process_time() - own_cpu
        spent = meter.per_item(before, meter.snapshot(), args.n)
        print(f"{args.n} in {elapsed:.2f}s: {args.n / elapsed:.1f}/s in one process")
        print(
            "CPU per request (ms; this process includes the profiler's overhead): "
            + ", ".join(f"{k} {v:.2f}" for k, v in spent.items())
        )
        print(f"CPU of this process per request: {own_cpu / args.n * 1000:.2f} ms")
        if args.plain:
            return 0
        if args.cpu:
            bench.OUT_DIR.mkdir(parents=True, exist_ok=True)
            cpu_profile.dump_stats(bench.OUT_DIR / f"profile-{args.what}.pstats")
            stats = pstats.Stats(cpu_profile)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
        else:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
