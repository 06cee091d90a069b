"""The quick start's `ready` process: once /healthz answers, print the login banner again
(with `./start --lan`, the LAN address's QR code too, after checking that address answers).

The start-up logs of web, worker and beat scroll the banner ./start printed out of sight, so it
is printed once more when the platform can be used. The process then idles until honcho stops
it (honcho stops every process when one exits), and exits quietly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smsgate import http
from smsgate.management.commands.quickstart_demo import CREDENTIALS_FILE, banner

POLL_SECONDS = 0.5


def _stop(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def _healthy(url: str) -> bool:
    try:
        # The server is ours, on loopback: the SSRF guard is for URLs users choose.
        return http.send("GET", url, timeout=2, allow_private=True).status_code == 200
    except http.OutboundError:
        return False


class Command(BaseCommand):
    help = "Wait until the quick start answers /healthz, print its banner again, then idle."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", default="8000")
        parser.add_argument("--timeout", type=float, default=120.0)

    def handle(self, *args: Any, **options: Any) -> None:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        port = str(options["port"])
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + options["timeout"]
        while not _healthy(url):
            if time.monotonic() > deadline:
                raise CommandError(f"{url} did not answer 200 within {options['timeout']:g} s.")
            time.sleep(POLL_SECONDS)
        saved: dict[str, str] = {}
        if CREDENTIALS_FILE.exists():
            saved = json.loads(CREDENTIALS_FILE.read_text())
        headline = "smsgate is up (Ctrl-C stops it)."
        self.stdout.write(banner(saved, port, headline, qr=True))
        lan_url = os.environ.get("SMSGATE_QUICKSTART_LAN_URL", "")
        if lan_url and not _healthy(f"{lan_url}/healthz"):
            # Asked from this machine: a firewall may still stop other machines, but this
            # catches a wrong address or an ALLOWED_HOSTS that refuses it.
            self.stdout.write(f"  Warning: {lan_url}/healthz does not answer from here.\n")
        self.stdout.flush()
        while True:
            signal.pause()
