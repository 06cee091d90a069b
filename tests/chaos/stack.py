"""The production process layout on private servers, for tests that kill and restart things.

PostgreSQL and Redis here are throwaway servers started by this test session on free ports,
never the shared ones on 5432/6379 (other test runs use those at the same moment), so killing
and restarting them is safe. On top of them run the real processes: gunicorn and daphne for
HTTP and websockets, `celery worker` and `celery beat`, each a separate process group so one
can be SIGKILLed with its pool children. A local receiver plays the webhook endpoints and a
load generator plays phones posting inbound SMS.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
import requests
from standardwebhooks import Webhook, WebhookVerificationError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("SMSGATE_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TEMPLATE_DB = "chaos_template"
SECRET_KEY = "chaos-tests-only-" + "k" * 40
ADMIN_PASSWORD = "correct horse battery staple"


def missing_tools() -> str | None:
    """Why the private servers cannot be started here, or None."""
    for tool in (PG_BIN / "initdb", PG_BIN / "pg_ctl", Path(REDIS_SERVER)):
        if not os.access(tool, os.X_OK):
            return f"needs {tool} to start private servers"
    if os.geteuid() == 0:
        # initdb refuses to run as root: the cluster belongs to the postgres user.
        if not shutil.which("runuser"):
            return "needs runuser to start PostgreSQL as the postgres user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "needs a postgres user to own the private PostgreSQL cluster"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.25
) -> float:
    """Poll until `predicate()` holds; returns the seconds it took, fails naming `what`."""
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # a server that is restarting: try again until the deadline
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def pid_with_socket(local_port: int, candidates: list[int], remote_port: int = 0) -> int | None:
    """Which of `candidates` holds a TCP socket with that local port (and remote port, when
    given), read from Linux's /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if local == local_port and remote_port in (0, remote):
                inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


# --- processes ----------------------------------------------------------------------------


class Service:
    """One process group with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, *, timeout: float) -> None:
        def seen() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
            return needle in self.log()

        try:
            wait_until(seen, timeout=timeout, what=f"{self.name} to log {needle!r}")
        except AssertionError:
            raise AssertionError(
                f"{self.name} did not log {needle!r}:\n{self.log()[-3000:]}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the whole group (a worker and its pool children)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM to the group: the first half of `stop`, so several can stop at once."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (pool children of a killed parent) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster (fsync off: we simulate process crashes, not power
    loss, and a killed server still recovers everything it acknowledged from its WAL)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self.dir.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run("initdb", "--version")  # fails early on a broken install

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        argv = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed:\n{result.stdout.decode()}{result.stderr.decode()}"
            )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


class PrivateRedis:
    """A throwaway Redis without persistence: a restart empties it, as a crash would."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        argv = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir),
        ]  # fmt: skip
        self.service = Service("redis", argv, dict(os.environ), self.dir)
        wait_until(self.ping, timeout=20, what="the private Redis")

    def ping(self) -> bool:
        return bool(self._client().ping())

    def flush(self) -> None:
        self._client().flushall()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: everything in memory (queued tasks included) is gone."""
        try:
            self._client().shutdown(nosave=True)
        except Exception:  # redis-py reports the closed connection as an error
            pass
        if self.service is not None:
            self.service.process.wait(timeout=10)
            self.service.stop()
            self.service = None


# --- the webhook receiver -------------------------------------------------------------------


class Receiver:
    """Webhook endpoints on loopback: records each verified delivery by (path, webhook-id).

    `hold_next()` makes the next request hang until `release()` (and then answer 503 without
    recording it: the worker that sent it is dead by then). `stop()`/`start()` take the
    receiver off the network and back on the same port.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.secrets: dict[str, str] = {}
        self.lock = threading.Lock()
        self.seen: dict[tuple[str, str], float] = {}
        self.requests = 0
        self.bad_signatures = 0
        self._hold = False
        self.held = threading.Event()
        self.held_request: dict[str, Any] = {}
        self._release = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def hold_next(self) -> None:
        self.held.clear()
        self._release.clear()
        with self.lock:
            self._hold = True

    def release(self) -> None:
        self._release.set()

    def _answer(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = urlsplit(handler.path).path
        webhook_id = handler.headers.get("webhook-id", "")
        with self.lock:
            self.requests += 1
            hold, self._hold = self._hold, False
        if hold:
            self.held_request.update(
                path=path, webhook_id=webhook_id, port=handler.client_address[1], at=time.time()
            )
            self.held.set()
            self._release.wait(timeout=120)
            self._answer(handler, 503)
            return
        try:
            Webhook(self.secrets[path]).verify(body, dict(handler.headers.items()))
        except (KeyError, WebhookVerificationError):
            with self.lock:
                self.bad_signatures += 1
            self._answer(handler, 400)
            return
        with self.lock:
            self.seen.setdefault((path, webhook_id), time.time())
        self._answer(handler, 200)

    def seen_keys(self) -> set[tuple[str, str]]:
        with self.lock:
            return set(self.seen)


# --- the stack ------------------------------------------------------------------------------


@dataclass
class Web:
    url: str
    service: Service


@dataclass
class Phone:
    device_id: str
    token: str
    secret: str


class Stack:
    """One fresh database (a copy of the migrated template) and an emptied Redis, with the
    processes a test starts on them; `close()` stops them all."""

    def __init__(
        self,
        root: Path,
        pg: PrivatePostgres,
        redis: PrivateRedis,
        name: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.pg, self.redis, self.database = pg, redis, name
        pg.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
        redis.flush()
        self.env = process_env(pg.url(name), redis.url) | (env or {})
        self.services: list[Service] = []
        self.admin_key = ""
        self.timings: dict[str, float] = {}

    # processes

    def spawn(self, name: str, argv: list[str]) -> Service:
        service = Service(name, argv, self.env, self.dir)
        self.services.append(service)
        return service

    def gunicorn(self, name: str = "web", workers: int = 2) -> Web:
        port = free_port()
        service = self.spawn(
            name,
            [
                str(BIN / "gunicorn"), "smsgate.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--timeout", "60", "--graceful-timeout", "5",
                "--log-level", "warning",
            ],
        )  # fmt: skip
        return self._ready(Web(f"http://127.0.0.1:{port}", service))

    def daphne(self, name: str = "daphne") -> Web:
        port = free_port()
        service = self.spawn(
            name,
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "smsgate.asgi:application"],
        )
        return self._ready(Web(f"http://127.0.0.1:{port}", service))

    def _ready(self, web: Web) -> Web:
        def healthy() -> bool:
            if not web.service.alive():
                raise AssertionError(f"{web.service.name} exited:\n{web.service.log()[-3000:]}")
            return requests.get(f"{web.url}/healthz", timeout=5).status_code == 200

        wait_until(healthy, timeout=60, what=f"{web.service.name} to answer /healthz")
        return web

    def worker(self, name: str, concurrency: int = 2) -> Service:
        service = self.spawn(
            name,
            [
                str(BIN / "celery"), "-A", "smsgate", "worker", "-n", f"{name}@%h",
                "--pool", "prefork", "--concurrency", str(concurrency), "-l", "info",
                "--without-gossip", "--without-mingle",
            ],
        )  # fmt: skip
        return service

    def beat(self) -> Service:
        return self.spawn(
            "beat",
            [
                str(BIN / "celery"), "-A", "smsgate", "beat", "-l", "info", "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile=",
            ],
        )  # fmt: skip

    def close(self) -> None:
        for service in self.services:
            service.terminate()
        deadline = time.monotonic() + 5
        for service in self.services:
            service.stop(timeout=max(deadline - time.monotonic(), 0.1))

    def logs(self) -> str:
        return "\n".join(f"----- {s.name} (last lines)\n{s.log()[-4000:]}" for s in self.services)

    # data

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.url(self.database), connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]

    def api(self, web: Web, method: str, path: str, body: Any = None) -> Any:
        if not self.admin_key:
            self.admin_key = self.manage("create_api_key", "--name", "chaos").strip()
        response = requests.request(
            method,
            f"{web.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=30,
        )
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()

    def phone(self, web: Web, number: str = "+15550100001", **fields: Any) -> Phone:
        created = self.api(
            web,
            "POST",
            "/api/v1/devices",
            {"name": "chaos phone", "sims": [{"slot": 1, "number": number}], **fields},
        )
        return Phone(created["id"], created["token"], created["smssync_secret"])

    def subscribe(self, web: Web, receiver: Receiver, path: str) -> str:
        created = self.api(
            web, "POST", "/api/v1/webhooks", {"url": receiver.url(path), "events": ["sms.received"]}
        )
        receiver.secrets[path] = created["secret"]
        return str(created["id"])

    def inbound_bodies(self) -> set[str]:
        return {
            row[0]
            for row in self.sql("SELECT body FROM messaging_message WHERE direction = 'inbound'")
        }

    def deliveries(self) -> list[tuple[str, str, str, str]]:
        """(delivery id, status, receiver path, webhook-id) of every delivery."""
        rows = self.sql(
            "SELECT d.id, d.status, e.url, d.event_id FROM webhooks_delivery d "
            "JOIN webhooks_endpoint e ON e.id = d.endpoint_id"
        )
        return [(pk, status, urlsplit(url).path, event) for pk, status, url, event in rows]


def process_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every product process: only what settings.py reads, pointing at the
    private servers (nothing leaks in from the test run's own DATABASE_URL/REDIS_URL)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        DJANGO_SETTINGS_MODULE="smsgate.settings",
        PYTHONUNBUFFERED="1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        SECRET_KEY=SECRET_KEY,
        SMSGATE_WEBHOOKS_ALLOW_PRIVATE="true",
        # Short enough for a test to see a killed worker's lease run out: lease = 5 s + 15 s.
        SMSGATE_WEBHOOKS_TIMEOUT="5",
        # The sweep every 5 s, treating messages queued for 15 s as lost (defaults: 30 s, 60 s).
        SMSGATE_WEBHOOKS_SWEEP_INTERVAL="5",
        SMSGATE_WEBHOOKS_SWEEP_GRACE="15",
        # Seconds instead of minutes to hours: an endpoint's 8 attempts (the default) span
        # 90 s, at least 72 s with the jitter, longer than scenario (d)'s 60 s outage.
        SMSGATE_WEBHOOKS_RETRY_SCHEDULE="2,4,8,16,20,20,20",
        SMSGATE_API_RATE_LIMIT="100000/min",
        LOG_LEVEL="INFO",
        # The stack waits for Celery's own lines ("beat: Starting", task receipts) to know a
        # process is up; they are at INFO, which is quiet by default.
        CELERY_LOG_LEVEL="INFO",
    )
    return env


# --- phones -----------------------------------------------------------------------------------


class Load:
    """Phones posting inbound SMS while a test breaks things: an SMSSync thread (one message per
    request) and an MSync thread (batches), every text unique. `accepted` holds the texts of
    every request that was answered with success: each of those must end up stored."""

    def __init__(
        self,
        urls: list[str],
        phone: Phone,
        *,
        tag: str,
        smssync_every: float = 0.2,
        msync_every: float = 0.5,
        batch: int = 5,
    ) -> None:
        self.urls, self.phone, self.tag = urls, phone, tag
        self.smssync_every, self.msync_every, self.batch = smssync_every, msync_every, batch
        self.accepted: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._smssync, smssync_every), daemon=True),
            threading.Thread(target=self._loop, args=(self._msync, msync_every), daemon=True),
        ]
        self._n = 0

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def accepted_count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def _next(self) -> tuple[int, str]:
        with self.lock:
            self._n += 1
            return self._n, self.urls[self._n % len(self.urls)]

    def _loop(self, send: Callable[[int, str], tuple[str, list[str]]], every: float) -> None:
        while not self._stop.is_set():
            n, url = self._next()
            try:
                outcome, texts = send(n, url)
            except requests.RequestException as exc:
                outcome, texts = type(exc).__name__, []
            with self.lock:
                self.outcomes[outcome] += 1
                self.accepted.update(texts)
            self._stop.wait(every)

    def _smssync(self, n: int, url: str) -> tuple[str, list[str]]:
        text = f"{self.tag} smssync {n}"
        form = {
            "secret": self.phone.secret,
            "from": f"+1555{n % 10_000_000:07d}",
            "message": text,
            "sent_timestamp": str(int(time.time() * 1000)),
            "sent_to": "+15550100001",
            "message_id": str(uuid.uuid4()),
            "device_id": "chaos",
        }
        response = requests.post(
            f"{url}/api/sms/smssync",
            data=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=15,
        )
        ok = response.status_code == 200 and response.json()["payload"]["success"] is True
        return (f"smssync {response.status_code}", [text] if ok else [])

    def _msync(self, n: int, url: str) -> tuple[str, list[str]]:
        texts = [f"{self.tag} msync {n}.{i}" for i in range(self.batch)]
        response = requests.post(
            f"{url}/api/sms/msync",
            data=msync_incoming(self.phone, texts, sender=f"+1666{n % 10_000_000:07d}"),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.phone.token}",
            },
            timeout=15,
        )
        ok = response.status_code == 200 and response.json().get("success") is True
        return (f"msync {response.status_code}", texts if ok else [])


def msync_incoming(phone: Phone, texts: list[str], *, sender: str = "+16660000000") -> bytes:
    """An MSync `incoming` batch, one message per text (the text doubles as the phone's id)."""
    body = {
        "action": "incoming",
        "device_id": phone.device_id,
        "messages": [
            {
                "from": sender,
                "message": text,
                "timestamp": int(time.time() * 1000),
                "sim_slot": 1,
                "id": text[:100],
            }
            for text in texts
        ],
    }
    return json.dumps(body).encode()
