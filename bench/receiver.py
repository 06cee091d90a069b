"""A small fast webhook receiver for the benchmark: answers 200 at once and remembers what came.
Paths under `/slow` answer POSTs after SLOW_SECONDS instead (a slow receiver, within the timeout).

`python -m bench.receiver PORT` serves every path; `GET /stats` returns the counts per path and,
for bodies carrying a `lat|<seq>|<sent at>` marker, the seconds from that send time to arrival
(one clock: everything runs on this machine). `POST /reset` forgets everything.

It shares the bench machine's cores with the product, so its CPU is charged against the
product's figures: one asyncio event loop with httptools' C parser (as uvicorn uses) costs a
fraction of http.server's thread and header parsing per request. A slow answer is a timer on the
loop, so it holds up nothing but its own connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import sys
import time
from collections import defaultdict, deque
from typing import cast

import httptools

MARKER = re.compile(rb"lat\|(\d+)\|([0-9.]+)")
SLOW_SECONDS = 1.0
# A burst of new connections (a worker's threads opening theirs at once) must not overflow the
# listen queue and wait for SYN retransmits (1 s, 3 s). Real servers listen with hundreds
# (nginx 511, uvicorn 2048).
BACKLOG = 512


def _response(status: bytes, body: bytes, close: bool = False) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n" % len(body)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


OK = _response(b"200 OK", b"{}")
OK_CLOSE = _response(b"200 OK", b"{}", close=True)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Tally:
    """What came: counts per path, and the latency of each marked event by path and sequence.

    `GET /stats` is polled every fraction of a second while tens of thousands of latencies are
    kept; json.dumps of them all costs ~16 ms per poll (30,000 entries), so each latency is
    written out as JSON once, when it arrives, and the whole is joined only after a change.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.latency: dict[str, dict[int, float]] = defaultdict(dict)
        self.last_at = 0.0
        # The last arrival on a path not under /slow: when the fast receivers got their last one.
        self.fast_last_at = 0.0
        self._latency_parts: dict[str, list[str]] = defaultdict(list)
        self._latency_json: str | None = "{}"

    def record(self, path: str, body: bytes, now: float) -> None:
        """Count a POST on `path` and, if its body carries a marker, its latency."""
        self.counts[path] += 1
        self.last_at = now
        if not path.startswith("/slow"):
            self.fast_last_at = now
        found = MARKER.search(body)
        if found is None:
            return
        seq, seen = int(found.group(1)), self.latency[path]
        # The first arrival counts; a retry of the same event is not a new latency.
        if seq not in seen:
            value = seen[seq] = now - float(found.group(2))
            # json.dumps writes an int key as its decimal string and a float as repr() does.
            number = repr(value) if math.isfinite(value) else json.dumps(value)
            self._latency_parts[path].append(f'"{seq}": {number}')
            self._latency_json = None

    def reset(self) -> None:
        self.counts.clear()
        self.latency.clear()
        self._latency_parts.clear()
        self._latency_json = "{}"

    def stats(self) -> bytes:
        """What json.dumps of {counts, latency, last_at, fast_last_at} gives, byte for byte."""
        if self._latency_json is None:
            paths = (
                f"{json.dumps(path)}: {{{', '.join(parts)}}}"
                for path, parts in self._latency_parts.items()
            )
            self._latency_json = "{" + ", ".join(paths) + "}"
        return (
            f'{{"counts": {json.dumps(self.counts)}, "latency": {self._latency_json}, '
            f'"last_at": {json.dumps(self.last_at)}, '
            f'"fast_last_at": {json.dumps(self.fast_last_at)}}}'
        ).encode()


TALLY = Tally()


class Answer:
    """An answer held back behind a slow one; `data` is None until its own timer fires."""

    __slots__ = ("close", "data")

    def __init__(self, data: bytes | None, close: bool) -> None:
        self.data = data
        self.close = close


class Connection(asyncio.Protocol):
    """One client connection. httptools calls the `on_*` methods while `data_received` feeds it,
    once per pipelined request; answers go out in request order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body = b""
        # Answers not yet written while a slow one is pending: HTTP/1.1 answers pipelined
        # requests in order, so a fast answer behind a slow one waits for it.
        self.waiting: deque[Answer] = deque()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Each answer is one write, but a kept-alive connection must not wait for the
            # client's delayed ACK (40 ms) behind Nagle either.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send(_response(b"400 Bad Request", b"{}", close=True), close=True)
        except httptools.HttpParserError:
            self._send(_response(b"400 Bad Request", b"{}", close=True), close=True)

    # --- httptools callbacks ----------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # curl sends `Expect: 100-continue` before larger bodies and waits for it (as
        # http.server answered); without it each such POST would stall a second. Not while
        # answers are held back: they go first, and the client sends its body anyway.
        if name.lower() == b"expect" and value.lower() == b"100-continue" and not self.waiting:
            self._send(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        now = time.time()
        path = self.url.decode("latin-1")
        body = self.body
        self.url = b""
        self.body = b""
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        slow = False
        if method == b"POST":
            if path == "/reset":
                TALLY.reset()
            else:
                TALLY.record(path, body, now)
                slow = path.startswith("/slow")
            answer = OK if keep_alive else OK_CLOSE
        elif method == b"GET":
            if path.startswith("/stats"):
                answer = _response(b"200 OK", TALLY.stats(), close=not keep_alive)
            else:
                answer = OK if keep_alive else OK_CLOSE
        else:
            answer = _response(b"501 Not Implemented", b"{}", close=not keep_alive)
        if slow:
            slot = Answer(None, not keep_alive)
            self.waiting.append(slot)
            asyncio.get_running_loop().call_later(SLOW_SECONDS, self._slow_done, slot, answer)
        elif self.waiting:
            self.waiting.append(Answer(answer, not keep_alive))
        else:
            self._send(answer, close=not keep_alive)

    # --- answers ----------------------------------------------------------------------------

    def _slow_done(self, slot: Answer, answer: bytes) -> None:
        slot.data = answer
        while self.waiting and self.waiting[0].data is not None:
            done = self.waiting.popleft()
            self._send(done.data or b"", close=done.close)

    def _send(self, data: bytes, close: bool = False) -> None:
        if self.closed or self.transport is None:
            return
        self.transport.write(data)
        if close:
            self.closed = True
            self.waiting.clear()
            self.transport.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", port, backlog=BACKLOG)
    async with server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
