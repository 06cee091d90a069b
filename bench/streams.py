"""Idle event streams of app phones for the bench (docs/performance.md#app-phones): raw
HTTP/1.1 connections to `GET /api/mobile/v1/events` held by one asyncio loop in a thread of
the bench process, each reading its stream line by line and queueing the events it sees with
their arrival time; and the timing of wake-ups against them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import Request

EVENTS_PATH = "/api/mobile/v1/events"
ENQUEUED = "MessageEnqueued"


@dataclass
class AppPhone:
    """A registered app phone: its device id and device token."""

    device_id: str
    token: str


def rss_kb(pid: int) -> int:
    """VmRSS: the resident memory of the process now (not its peak)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Streams:
    """Idle event streams of app phones, held by one asyncio loop in a thread. `events[device]`
    receives (perf_counter time, event name) for every event its stream writes."""

    port: int
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    events: dict[str, queue.Queue[tuple[float, str]]] = field(default_factory=dict)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ended: int = 0  # streams the server closed while they should have stayed open
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name="streams", daemon=True)
        self.thread.start()

    def open(self, phones: list[AppPhone], *, at_once: int = 50, timeout: float = 120) -> int:
        """Open one stream per phone (`at_once` handshakes in flight) and return how many got
        their `:connected` line."""
        future = asyncio.run_coroutine_threadsafe(self._open_all(phones, at_once), self.loop)
        return future.result(timeout=timeout)

    async def _open_all(self, phones: list[AppPhone], at_once: int) -> int:
        gate = asyncio.Semaphore(at_once)

        async def one(phone: AppPhone) -> bool:
            async with gate:
                return await self._open(phone)

        opened = await asyncio.gather(*(one(p) for p in phones))
        return sum(opened)

    async def _open(self, phone: AppPhone) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(
                (
                    f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                    f"Authorization: Bearer {phone.token}\r\nAccept: text/event-stream\r\n"
                    "User-Agent: me.capcom.smsgateway/1.68.0\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 30)
            if b" 200 " not in status:
                self.failures.append(status.decode(errors="replace").strip())
                writer.close()
                return False
            # Headers, then the body (chunked): its first line is the `:connected` comment.
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line or line.startswith(b":connected"):
                    break
        except (OSError, TimeoutError) as exc:
            self.failures.append(repr(exc))
            return False
        if not line:
            self.failures.append("the stream ended before :connected")
            return False
        self.events[phone.device_id] = queue.Queue()
        self.writers.append(writer)
        asyncio.get_running_loop().create_task(self._read(reader, self.events[phone.device_id]))
        return True

    async def _read(
        self, reader: asyncio.StreamReader, inbox: queue.Queue[tuple[float, str]]
    ) -> None:
        # Chunk sizes come on lines of their own: only `event:` lines matter here.
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                if line.startswith(b"event: "):
                    inbox.put((time.perf_counter(), line[7:].strip().decode()))
        self.ended += 1

    def next_event(self, device_id: str, name: str, timeout: float) -> float | None:
        """When the next `name` event reached this phone's stream (perf_counter), or None."""
        inbox = self.events[device_id]
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            try:
                at, event = inbox.get(timeout=left)
            except queue.Empty:
                return None
            if event == name:
                return at
        return None

    def forget(self, device_id: str) -> None:
        inbox = self.events[device_id]
        while not inbox.empty():
            inbox.get_nowait()

    def close(self) -> None:
        async def close_all() -> None:
            for writer in self.writers:
                writer.close()
            await asyncio.sleep(0.2)

        if self.thread is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def group_send(device_id: str) -> None:
    """The wake-up alone: the event `devices.wake.notify_phones` sends, straight onto the
    channel layer from this process (no request, no transaction)."""
    from devices.wake import EVENT_TYPE, phone_group
    from smsgate.groups import send_to_groups

    send_to_groups(
        [(phone_group(device_id), {"type": EVENT_TYPE, "event": ENQUEUED, "data": None})]
    )


def send_request(api_key: str, device_id: str, i: int) -> Request:
    body = {"to": f"+1202557{i % 10000:04d}", "body": f"bench wake {i}", "device_id": device_id}
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    return ("POST", "/api/v1/messages", json.dumps(body).encode(), headers)


@dataclass
class Wakes:
    latencies: list[float] = field(default_factory=list)  # send → event on the stream, s
    answered: list[float] = field(default_factory=list)  # send → HTTP answer, s
    missed: int = 0
    first_error: str = ""


def wake_ups(
    streams: Streams,
    phones: list[AppPhone],
    send: Callable[[AppPhone, int], str],
    *,
    count: int,
    timeout: float = 10.0,
) -> Wakes:
    """`count` sends one after the other, each to the next phone in `phones`: the time from
    calling `send` to `MessageEnqueued` on that phone's stream. `send` returns "" when it was
    accepted, else what went wrong."""
    result = Wakes()
    for i in range(count):
        phone = phones[i % len(phones)]
        streams.forget(phone.device_id)
        start = time.perf_counter()
        error = send(phone, i)
        result.answered.append(time.perf_counter() - start)
        if error:
            result.missed += 1
            result.first_error = result.first_error or error
            continue
        at = streams.next_event(phone.device_id, ENQUEUED, timeout)
        if at is None:
            result.missed += 1
            result.first_error = result.first_error or f"no {ENQUEUED} within {timeout:g} s"
        else:
            result.latencies.append(at - start)
    return result


@dataclass
class StreamFigures:
    streams: int
    opened: int
    rss_idle_kb: int
    rss_open_kb: int
    wakes: Wakes
    baseline: Wakes
    failures: list[str]
    ended: int

    @property
    def per_stream_kb(self) -> float:
        return (self.rss_open_kb - self.rss_idle_kb) / self.opened if self.opened else 0.0


def measure_streams(
    *,
    daphne_port: int,
    daphne_pid: int,
    phones: list[AppPhone],
    send: Callable[[AppPhone, int], str],
    sends: int,
    settle: float = 2.0,
) -> StreamFigures:
    """Memory per idle stream and send → `MessageEnqueued` with all of `phones` streaming."""
    streams = Streams(daphne_port)
    streams.start()
    try:
        # Warm daphne first (one stream opened, woken and closed: the consumer's code, the
        # channel layer's connections, the thread pool for database calls), so the idle figure
        # is a daphne that has served a stream, not one that never imported its code.
        warm = Streams(daphne_port)
        warm.start()
        warm.open(phones[:1])
        group_send(phones[0].device_id)
        warm.next_event(phones[0].device_id, ENQUEUED, 10)
        warm.close()
        time.sleep(settle)
        idle = rss_kb(daphne_pid)
        opened = streams.open(phones)
        time.sleep(settle)  # the last stream_opened writes and keepalive tasks have started
        held = rss_kb(daphne_pid)
        live = [p for p in phones if p.device_id in streams.events]

        def bare(phone: AppPhone, i: int) -> str:
            group_send(phone.device_id)
            return ""

        baseline = wake_ups(streams, live, bare, count=sends)
        wakes = wake_ups(streams, live, send, count=sends)
        return StreamFigures(
            streams=len(phones),
            opened=opened,
            rss_idle_kb=idle,
            rss_open_kb=held,
            wakes=wakes,
            baseline=baseline,
            failures=streams.failures[:3],
            ended=streams.ended,
        )
    finally:
        streams.close()
