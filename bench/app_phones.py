"""The SMS Gateway for Android app's protocol in the bench (docs/performance.md#app-phones).

Two phases, called from bench/run.py:

- polls: `GET /api/mobile/v1/message` on gunicorn, from a phone with nothing queued and from
  phones with 50 messages queued each (one poll per phone, so every answer is 50 new claims and
  no re-offers), as the MSync poll phase does;
- streams: `GET /api/mobile/v1/events` on daphne (`smsgate.asgi:application`, as the Procfile
  serves it). Hundreds of app phones hold an idle stream each; the daphne process's resident
  memory before and after gives the memory per open stream, then messages sent through the
  REST API to phones with open streams give the time from the send request to
  `MessageEnqueued` on that phone's stream, against a bare channel-layer group send of the
  same event from this process (the floor any wake-up pays).

The streams and the wake-up timing are in bench/streams.py.
"""

from __future__ import annotations

import http.client
import json
import resource
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.load import Load, Request, hammer, percentile, row
from bench.streams import AppPhone, Wakes, measure_streams, send_request

MESSAGE_PATH = "/api/mobile/v1/message"
QUEUED_PER_POLL = 50


@dataclass
class AppFixture:
    empty: AppPhone
    queued: list[AppPhone]  # QUEUED_PER_POLL messages queued for each
    streaming: list[AppPhone]


def raise_open_files(wanted: int) -> tuple[int, int]:
    """Raise this process's soft limit on open files to `wanted` (at most the hard limit), so
    that it and the servers it starts afterwards (they inherit it) can hold every stream.
    Returns the (old, new) soft limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return soft, target
    return soft, soft


def _app_phone(name: str) -> AppPhone:
    from devices.models import Device
    from devices.services import register_device
    from smsgate.crypto import hash_secret, random_token

    no_limits: dict[str, int | None] = {"per_minute": None, "per_hour": None, "per_day": None}
    device = register_device(name=name, sims=[{"slot": 1}], limits=no_limits).device
    # What a registration through `POST /device` leaves (phones/smsgateway/services.py), without
    # a pairing round trip per phone.
    token = random_token(24)
    Device.objects.filter(pk=device.pk).update(app_token_hash=hash_secret(token))
    return AppPhone(device_id=device.pk, token=token)


def make_app_fixture(*, polls: int, streams: int) -> AppFixture:
    """App phones: one with an empty queue, `polls` with 50 queued messages each, `streams`
    that will hold an event stream."""
    from messaging.services import send_bulk

    empty = _app_phone("app-poll-empty")
    queued = [_app_phone(f"app-poll-{i}") for i in range(polls)]
    for i, phone in enumerate(queued):
        send_bulk(
            recipients=[f"+1202556{(i * QUEUED_PER_POLL + j) % 10000:04d}" for j in range(50)],
            body="queued for the app poll benchmark",
            device_id=phone.device_id,
            sim_slot=1,
        )
    streaming = [_app_phone(f"app-stream-{i}") for i in range(streams)]
    return AppFixture(empty=empty, queued=queued, streaming=streaming)


def poll_request(phone: AppPhone) -> Request:
    return ("GET", MESSAGE_PATH, None, {"Authorization": f"Bearer {phone.token}"})


def polled(count: int) -> Callable[[int, bytes], bool]:
    """An answer check: a JSON list of `count` messages."""

    def check(i: int, data: bytes) -> bool:
        body = json.loads(data)
        return isinstance(body, list) and len(body) == count

    return check


# --- the phases, as rows of the bench's table -------------------------------------------------

WAKE_TARGET_MS = 2000.0  # issue 13: the emulated app gets MessageEnqueued within 2 s
MEMORY_TARGET_KB = 50.0  # issue 13: ≤ 50 KB per idle stream on the web process

LABELS = {
    "app_poll_empty": "app poll (GET /message), empty",
    "app_poll_50_queued": "app poll (GET /message), 50 queued",
    "daphne_idle_rss": "daphne RSS, idle (baseline)",
    "sse_memory_per_stream": "daphne memory per idle stream",
    "sse_wake_baseline": "group send → stream (baseline)",
    "sse_wake": "send API → MessageEnqueued",
}


def _errors(load: Load) -> dict[str, Any]:
    return {"errors": load.errors, "first_error": load.first_error, "requests": load.ok}


def _wake_row(wakes: Wakes, baseline: Wakes | None, streams: int) -> dict[str, Any]:
    p95 = percentile(wakes.latencies, 95) * 1000
    top = max(wakes.latencies, default=float("nan")) * 1000
    base = percentile(baseline.latencies, 95) * 1000 if baseline else None
    r = row(
        p95,
        "ms (p95)",
        "sse_wake_baseline" if baseline else None,
        base,
        None,
        higher_is_better=False,
        p50_ms=percentile(wakes.latencies, 50) * 1000,
        p95_ms=p95,
        max_ms=top,
        sends=len(wakes.answered),
        missed=wakes.missed,
        answer_p50_ms=percentile(wakes.answered, 50) * 1000,
        streams_open=streams,
        errors=wakes.missed,
        first_error=wakes.first_error,
    )
    if baseline is not None:
        # Absolute, on the slowest send: the ratio says how much of it the send path adds.
        r["target"] = WAKE_TARGET_MS
        r["met"] = wakes.missed == 0 and top <= WAKE_TARGET_MS
    return r


def measure(
    *,
    port: int,
    daphne_port: int,
    daphne_pid: int,
    api_key: str,
    fx: AppFixture,
    seconds: float,
    concurrency: int,
    sends: int,
    plain_rate: float | None,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The app phases; `plain_rate` is the run's plain JSON baseline (measured here when
    None, for a run of these phases alone). Returns rows and raw samples."""
    results: dict[str, Any] = {}
    c = concurrency

    def step(name: str) -> None:
        print(f"  {name} …", flush=True)

    if plain_rate is None:
        step("plain JSON view")
        plain_get: Callable[[int], Request] = lambda i: ("GET", "/bench/json", None, {})  # noqa: E731
        hammer(port, plain_get, concurrency=c, total=4 * c)
        plain = hammer(port, plain_get, concurrency=c, seconds=seconds)
        results["plain_json"] = row(plain.rate, "req/s", None, None, None, **_errors(plain))
        plain_rate = plain.rate

    step("app polls, empty queue")
    empty_poll: Callable[[int], Request] = lambda i: poll_request(fx.empty)  # noqa: E731
    hammer(port, empty_poll, concurrency=c, total=4 * c)
    empty = hammer(port, empty_poll, concurrency=c, seconds=seconds, check=polled(0))
    step(f"app polls, {QUEUED_PER_POLL} queued ({len(fx.queued)} polls)")
    full = hammer(
        port,
        lambda i: poll_request(fx.queued[i]),
        concurrency=c,
        total=len(fx.queued),
        check=polled(QUEUED_PER_POLL),
    )
    results["app_poll_empty"] = row(
        empty.rate, "req/s", "plain_json", plain_rate, 0.5, **_errors(empty)
    )
    results["app_poll_50_queued"] = row(
        full.rate,
        "req/s",
        "plain_json",
        plain_rate,
        0.5,
        p50_ms=full.pct(50) * 1000,
        **_errors(full),
    )

    conn_lock = threading.Lock()
    conn: list[Any] = []

    def send(phone: AppPhone, i: int) -> str:
        with conn_lock:
            if not conn:
                conn.append(http.client.HTTPConnection("127.0.0.1", port, timeout=30))
            method, path, body, headers = send_request(api_key, phone.device_id, i)
            try:
                conn[0].request(method, path, body=body, headers=headers)
                response = conn[0].getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.clear()
                return repr(exc)
            return "" if 200 <= response.status < 300 else f"{response.status} {data[:200]!r}"

    step(f"{len(fx.streaming)} idle event streams on daphne, {sends} wake-ups")
    figures = measure_streams(
        daphne_port=daphne_port,
        daphne_pid=daphne_pid,
        phones=fx.streaming,
        send=send,
        sends=sends,
    )
    results["daphne_idle_rss"] = row(figures.rss_idle_kb / 1024, "MB", None, None, None)
    memory = row(
        figures.per_stream_kb,
        "KB",
        None,
        None,
        MEMORY_TARGET_KB,
        higher_is_better=False,
        streams=figures.streams,
        opened=figures.opened,
        rss_idle_mb=figures.rss_idle_kb / 1024,
        rss_open_mb=figures.rss_open_kb / 1024,
        # All the open streams together, against the idle process.
        growth_ratio=figures.rss_open_kb / figures.rss_idle_kb if figures.rss_idle_kb else None,
        ended=figures.ended,
        errors=figures.streams - figures.opened,
        first_error="; ".join(figures.failures),
    )
    results["sse_memory_per_stream"] = memory
    results["sse_wake_baseline"] = _wake_row(figures.baseline, None, figures.opened)
    results["sse_wake"] = _wake_row(figures.wakes, figures.baseline, figures.opened)
    samples = {
        "sse_wake_s": figures.wakes.latencies,
        "sse_wake_baseline_s": figures.baseline.latencies,
    }
    return results, samples


def fmt(r: dict[str, Any], key: str) -> str:
    """The value column of an app row (bench/run.py prints the rest)."""
    if key == "sse_memory_per_stream":
        return (
            f"{r['value']:,.1f} KB/stream ({r['opened']} of {r['streams']} open, "
            f"{r['rss_idle_mb']:.0f} → {r['rss_open_mb']:.0f} MB, ×{r['growth_ratio']:.2f})"
        )
    if key.startswith("sse_wake"):
        return (
            f"p50 {r['p50_ms']:.0f} / p95 {r['p95_ms']:.0f} / max {r['max_ms']:.0f} ms, "
            f"{r['sends']} sends"
        )
    value = f"{r['value']:,.1f} {r['unit']}"
    if r.get("vs_msync"):
        value += f"  ({r['vs_msync']:.2f}× the MSync poll)"
    return value
