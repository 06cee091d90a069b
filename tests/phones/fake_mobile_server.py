"""A tiny mobile-API server on loopback for the app emulator's tests: records every request,
answers from fixtures, and serves an SSE stream the test writes to."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class FakeMobileServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: list[dict[str, Any]] = []
        self.settings: dict[str, Any] = {
            "webhooks": {"signing_key": "s3cret-key"},
            "gateway": {"notification_channel": "SSE_ONLY"},
        }
        self.hook_events = ["sms:received", "sms:sent", "sms:delivered", "sms:failed"]
        self.extra_hooks: list[dict[str, Any]] = []
        self.stream_mode = "open"  # "open" | "fail" (503) | "close" (200, then ends at once)
        self.hook_status = 200
        self.device_status: dict[str, int] = {}
        self.streams: list[queue.Queue[bytes | None]] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def base(self) -> str:
        return self.url + "/mobile/v1"

    def webhooks(self) -> list[dict[str, Any]]:
        own = [
            {"id": f"wh-{e}", "deviceId": None, "url": f"{self.url}/hooks/{e}", "event": e}
            for e in self.hook_events
        ]
        return own + self.extra_hooks

    def start(self) -> FakeMobileServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        for stream in list(self.streams):
            stream.put(None)
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, text: str) -> None:
        for stream in list(self.streams):
            stream.put(text.encode())

    def close_streams(self) -> None:
        for stream in list(self.streams):
            stream.put(None)

    def seen(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)


def wait_for(condition: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def _handler(server: FakeMobileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            server.record(recorded)
            route = (self.command, self.path.split("?")[0].removeprefix("/mobile/v1"))
            status = server.device_status.get(self.command)
            if route[1] == "/device" and status:
                return self._answer(status, {"message": "nope"})
            if route == ("POST", "/device"):
                body = {"id": "dev_1", "token": "devtoken", "login": "u", "password": "p"}
                return self._answer(201, body)
            if route == ("PATCH", "/device") or route == ("PATCH", "/message"):
                return self._answer(204)
            if route == ("GET", "/settings"):
                return self._answer(200, server.settings)
            if route == ("GET", "/webhooks"):
                return self._answer(200, server.webhooks())
            if route == ("GET", "/message"):
                return self._answer(200, server.messages)
            if route[1].startswith("/hooks/"):
                return self._answer(server.hook_status, {})
            if route == ("GET", "/events"):
                return self._events()
            return self._answer(404, {"message": "not found"})

        def _events(self) -> None:
            if server.stream_mode == "fail":
                return self._answer(503, {"message": "down"})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.flush()
            if server.stream_mode == "close":
                return
            stream: queue.Queue[bytes | None] = queue.Queue()
            server.streams.append(stream)
            try:
                while (chunk := stream.get()) is not None:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                server.streams.remove(stream)

        do_GET = do_POST = do_PATCH = _serve

    return Handler
