"""The quick start (./start): its environment, and a clean, quiet run under honcho."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from smsgate import lan

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_env(tmp_path: Path, **given: str) -> dict[str, str]:
    """The environment ./start exports, from sourcing scripts/quickstart-env.sh as it does."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMSGATE_") and k not in {"HOST", "ALLOWED_HOSTS"}
    }
    env.update(given)
    env["ROOT"] = str(tmp_path)  # a project root with (or without) its own .env
    # ./start has put the virtualenv first on PATH by the time it sources the script.
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    out = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {ROOT}/scripts/quickstart-env.sh; env -0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(line.split("=", 1) for line in out.split("\0") if "=" in line)


def test_the_quick_start_lets_webhooks_reach_localhost(tmp_path: Path) -> None:
    env = _quickstart_env(tmp_path)
    assert env["SMSGATE_WEBHOOKS_ALLOW_PRIVATE"] == "true"
    # settings.py reads it as the guard's switch: a receiver on localhost is accepted.
    check = (
        "import django; django.setup(); from smsgate import http; "
        "http.check_destination('http://localhost:5000/sms'); print('allowed')"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "smsgate.settings"},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "allowed", result.stderr


def test_the_start_script_uses_the_quick_start_environment() -> None:
    assert "source scripts/quickstart-env.sh" in (ROOT / "start").read_text()


def test_the_quick_start_keeps_a_choice_made_in_the_environment(tmp_path: Path) -> None:
    env = _quickstart_env(tmp_path, SMSGATE_WEBHOOKS_ALLOW_PRIVATE="false")
    assert env["SMSGATE_WEBHOOKS_ALLOW_PRIVATE"] == "false"


def test_the_quick_start_keeps_a_choice_made_in_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SMSGATE_WEBHOOKS_ALLOW_PRIVATE=false\n")
    env = _quickstart_env(tmp_path)
    assert "SMSGATE_WEBHOOKS_ALLOW_PRIVATE" not in env  # settings.py reads .env itself


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _running_quick_start(
    tmp_path: Path, **given: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """honcho with the Procfile, as ./start runs it, on a scratch SQLite database; yields the
    process and the lines it printed so far (one reader thread keeps appending)."""
    port = _free_port()
    env = _quickstart_env(ROOT, PORT=str(port), **given)
    env.update(
        {
            "SMSGATE_QUICKSTART_PORT": str(port),
            "DJANGO_SETTINGS_MODULE": "smsgate.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            "SMSGATE_QUICKSTART_CREDENTIALS": str(tmp_path / "credentials.json"),
        }
    )
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [*manage, "quickstart_demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", "Procfile", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # One reader thread takes every line: reading part of the pipe here and the rest with
    # communicate() would lose what the first reader had buffered but not returned yet.
    lines: list[str] = []
    assert honcho.stdout is not None

    def read_all() -> None:
        for line in honcho.stdout or ():
            lines.append(line)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        yield honcho, lines
    finally:
        if honcho.poll() is None:
            honcho.kill()
        reader.join(timeout=10)


def _wait_until_up(lines: list[str]) -> None:
    deadline = time.monotonic() + 60
    while not any("smsgate is up" in line for line in list(lines)):
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)


@pytest.mark.slow
def test_the_quick_start_is_quiet_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """The banner comes again once the web answers, nothing logs while idle, and Ctrl-C stops
    every process without errors or SIGKILL."""
    with _running_quick_start(tmp_path) as (honcho, lines):
        _wait_until_up(lines)
        up = len(lines)
        time.sleep(12)  # beat's sweeps run every 5-10 s
        at_sigint = len(lines)
        honcho.send_signal(signal.SIGINT)
        stopped_at = time.monotonic()
        honcho.wait(timeout=30)
        took = time.monotonic() - stopped_at
    rest = "".join(lines[at_sigint:])
    idle_lines = "".join(lines[up:at_sigint])
    output = "".join(lines)
    first_up = next(i for i, line in enumerate(lines) if "smsgate is up" in line)
    assert any("Login:" in line for line in lines[first_up:]), output
    # honcho sends SIGKILL to what is still running 5 s after its SIGTERM (checked below).
    assert took < 8, output
    for bad in ("ERROR", "exited with", "SIGKILL", "superuser", "No hostname was supplied"):
        assert bad not in output, output
    idle = idle_lines + rest.split("SIGINT received")[0]
    assert not re.search(r"Sending due task|Task \S+ (received|succeeded)", idle), output
    assert "On your network" not in output  # the default stays on 127.0.0.1


# --- ./start --lan ----------------------------------------------------------------------------


def test_start_takes_lan_and_refuses_other_options() -> None:
    # The options are read before anything is installed or started.
    ok = subprocess.run([str(ROOT / "start"), "--help"], capture_output=True, text=True)
    bad = subprocess.run([str(ROOT / "start"), "--lna"], capture_output=True, text=True)
    assert ok.returncode == 0 and "--lan" in ok.stdout
    assert bad.returncode == 2 and "unknown option --lna" in bad.stderr
    assert "--lan) export HOST=0.0.0.0 ;;" in (ROOT / "start").read_text()


def test_the_web_process_binds_host_defaulting_to_loopback() -> None:
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert "daphne -b ${HOST:-127.0.0.1} " in web


def test_by_default_the_quick_start_stays_on_loopback(tmp_path: Path) -> None:
    env = _quickstart_env(tmp_path)
    assert env["HOST"] == "127.0.0.1"
    assert "SMSGATE_QUICKSTART_LAN_URL" not in env and "ALLOWED_HOSTS" not in env


def _lan_address() -> str:
    address = lan.find_lan_address()
    if address is None:
        pytest.skip("this machine has no address on a local network")
    return address


def test_on_the_lan_the_address_is_allowed_and_is_the_public_url(tmp_path: Path) -> None:
    address = _lan_address()
    env = _quickstart_env(tmp_path, HOST="0.0.0.0", PORT="9123")
    assert env["ALLOWED_HOSTS"] == f"127.0.0.1,localhost,[::1],{address}"
    assert env["SMSGATE_PUBLIC_URL"] == f"http://{address}:9123"
    assert env["SMSGATE_QUICKSTART_LAN_URL"] == f"http://{address}:9123"


def test_on_the_lan_a_public_url_in_dot_env_is_kept(tmp_path: Path) -> None:
    _lan_address()
    (tmp_path / ".env").write_text("SMSGATE_PUBLIC_URL=https://sms.example.org\n")
    env = _quickstart_env(tmp_path, HOST="0.0.0.0")
    assert "SMSGATE_PUBLIC_URL" not in env  # settings.py reads .env itself


def test_without_a_lan_address_the_quick_start_stops_with_a_reason(tmp_path: Path) -> None:
    # A `python` whose address finder fails, as on a machine without a network: the script
    # must stop with the finder's reason, not carry on as if nothing happened.
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\necho "./start: could not find this machine\'s address" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "HOST": "0.0.0.0", "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    script = f"set -euo pipefail; source {ROOT}/scripts/quickstart-env.sh; echo started"
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "started" not in result.stdout
    assert "could not find this machine's address" in result.stderr


@pytest.mark.slow
def test_the_lan_quick_start_answers_on_the_lan_address(tmp_path: Path) -> None:
    """HOST=0.0.0.0 (what --lan sets): the banner prints the LAN URL and its QR code, and the
    dashboard answers there, login form (CSRF) included. Talks to this machine's own address."""
    address = _lan_address()
    with _running_quick_start(tmp_path, HOST="0.0.0.0") as (honcho, lines):
        _wait_until_up(lines)
        output = "".join(lines)
        port = re.search(rf"On your network: http://{re.escape(address)}:(\d+)/", output)
        assert port, output
        base = f"http://{address}:{port.group(1)}"
        assert "insecure build" in output and f"let port {port.group(1)} in" in output
        assert "▀▀▀▀▀" in output  # the QR code's last row
        assert "does not answer from here" not in output

        session = requests.Session()
        assert session.get(f"{base}/healthz", timeout=5).status_code == 200
        login = session.get(f"{base}/login/", timeout=5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert login.status_code == 200 and token
        password = json.loads((tmp_path / "credentials.json").read_text())["password"]
        response = session.post(
            f"{base}/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Origin": base, "Referer": f"{base}/login/"},
            allow_redirects=False,
            timeout=5,
        )
        assert response.status_code == 302, response.text[:500]
        assert session.get(f"{base}/devices/", timeout=5).status_code == 200
        honcho.send_signal(signal.SIGINT)
        honcho.wait(timeout=30)
