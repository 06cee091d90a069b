"""Used by ./start: a demo admin login and an API key, made once and printed every start."""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

import segno
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from smsgate.services import create_api_key

# Overridable so that a test starting the quick start on a scratch database leaves the
# checkout's own demo login alone.
CREDENTIALS_FILE = Path(
    os.environ.get(
        "SMSGATE_QUICKSTART_CREDENTIALS", settings.VAR_DIR / "quickstart-credentials.json"
    )
)


def terminal_qr(text: str) -> str:
    """A QR code drawn with block characters (two rows of modules per line), for a phone's
    camera to read off the terminal."""
    drawing = io.StringIO()
    segno.make(text, error="m").terminal(out=drawing, compact=True, border=2)
    return drawing.getvalue().rstrip("\n")


def banner(saved: dict[str, str], port: str, headline: str, *, qr: bool = False) -> str:
    """The lines a new user needs: where to go, how to log in, and a request to try; with
    `./start --lan` also the address a phone on the network uses (and, with `qr`, a QR code
    of it: the ready banner has one, the first would only scroll away)."""
    base = f"http://127.0.0.1:{port}"
    password = saved.get("password", "(the one you set)")
    api_key = saved.get("api_key", "(see the API keys page)")
    lines = [
        "",
        headline,
        f"  Dashboard:  {base}/",
        f"  Login:      admin / {password}",
        f"  API key:    {api_key}",
        f"  API docs:   {base}/api/docs/",
        "  Try it:",
        f"    curl -H 'Authorization: Bearer {api_key}' "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"to":"+15551234567","body":"hi"}}\' {base}/api/v1/messages',
    ]
    lan_url = os.environ.get("SMSGATE_QUICKSTART_LAN_URL", "")
    if lan_url:
        lines += [
            f"  On your network: {lan_url}/   (phones and other computers on it)",
            "    Pair a phone: Devices → Pair a new phone. Plain HTTP: the SMS Gateway for",
            f"    Android app needs its insecure build; a firewall must let port {port} in.",
        ]
        if qr:
            lines += ["", terminal_qr(f"{lan_url}/")]
    return "\n".join([*lines, ""])


class Command(BaseCommand):
    help = "Create the quick start's demo admin login and API key (once) and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        saved: dict[str, str] = {}
        if CREDENTIALS_FILE.exists():
            saved = json.loads(CREDENTIALS_FILE.read_text())
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            saved["password"] = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@localhost", saved["password"])
        if "api_key" not in saved:
            saved["api_key"] = create_api_key(name="quick start", role="admin").plaintext
        CREDENTIALS_FILE.write_text(json.dumps(saved))
        CREDENTIALS_FILE.chmod(0o600)
        headline = "smsgate is starting (web, worker and beat; Ctrl-C stops them all)."
        self.stdout.write(banner(saved, str(options["port"]), headline))
