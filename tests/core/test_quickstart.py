"""The quick start (./start): its environment, and a clean, quiet run under honcho."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_env(tmp_path: Path, **given: str) -> dict[str, str]:
    """The environment ./start exports, from sourcing scripts/quickstart-env.sh as it does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env.update(given)
    env["ROOT"] = str(tmp_path)  # a project root with (or without) its own .env
    out = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {ROOT}/scripts/quickstart-env.sh; env -0"],
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


@pytest.mark.slow
def test_the_quick_start_is_quiet_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """honcho with the Procfile, as ./start runs it: the banner comes again once the web answers,
    nothing logs while idle, and Ctrl-C stops every process without errors or SIGKILL."""
    port = _free_port()
    env = _quickstart_env(ROOT)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
            "PORT": str(port),
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

    def seen(text: str) -> bool:
        return any(text in line for line in list(lines))

    try:
        deadline = time.monotonic() + 60
        while not seen("smsgate is up") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen("smsgate is up"), "".join(lines)
        up = len(lines)
        time.sleep(12)  # beat's sweeps run every 5-10 s
        at_sigint = len(lines)
        honcho.send_signal(signal.SIGINT)
        stopped_at = time.monotonic()
        honcho.wait(timeout=30)
        took = time.monotonic() - stopped_at
        reader.join(timeout=10)
    finally:
        if honcho.poll() is None:
            honcho.kill()
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
