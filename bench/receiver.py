"""A small fast webhook receiver for the benchmark: answers 200 at once and remembers what came.
Paths under `/slow` answer after SLOW_SECONDS instead (a slow receiver, within the timeout).

`python -m bench.receiver PORT` serves every path; `GET /stats` returns the counts per path and,
for bodies carrying a `lat|<seq>|<sent at>` marker, the seconds from that send time to arrival
(one clock: everything runs on this machine). `POST /reset` forgets everything.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = re.compile(rb"lat\|(\d+)\|([0-9.]+)")

_lock = threading.Lock()
_counts: dict[str, int] = defaultdict(int)
_latency: dict[str, dict[int, float]] = defaultdict(dict)
_last_at: list[float] = [0.0]
# The last arrival on a path not under /slow: when the fast receivers got their last request.
_fast_last_at: list[float] = [0.0]
SLOW_SECONDS = 1.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection waits for
    # the client's delayed ACK (40 ms) between them. Real servers (uvicorn, Node) set it too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet: it is a hot path
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        now = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/reset":
            with _lock:
                _counts.clear()
                _latency.clear()
            self._answer(200, b"{}")
            return
        found = MARKER.search(raw)
        with _lock:
            _counts[self.path] += 1
            _last_at[0] = now
            if not self.path.startswith("/slow"):
                _fast_last_at[0] = now
            if found:
                # The first arrival counts; a retry of the same event is not a new latency.
                _latency[self.path].setdefault(int(found.group(1)), now - float(found.group(2)))
        if self.path.startswith("/slow"):
            time.sleep(SLOW_SECONDS)
        self._answer(200, b"{}")

    def do_GET(self) -> None:
        if self.path.startswith("/stats"):
            with _lock:
                body = json.dumps(
                    {
                        "counts": dict(_counts),
                        "latency": _latency,
                        "last_at": _last_at[0],
                        "fast_last_at": _fast_last_at[0],
                    }
                ).encode()
            self._answer(200, body)
            return
        self._answer(200, b"{}")


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new connections (a worker's
    # threads opening theirs at once) overflows it and waits for SYN retransmits (1 s, 3 s).
    # Real servers listen with hundreds (nginx 511, uvicorn 2048).
    request_queue_size = 512


def main() -> None:
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
