"""A phone simulator: speaks MSync, SMSSync or the SMS Gateway for Android app's mobile API
over real HTTP against a running server.

    python manage.py simulate_device --server http://127.0.0.1:8000 --device-id dev_… \\
        --token … [--protocol msync|smssync --secret …] [--inbound "+15551234567:Hello"] \\
        [--inbound-file messages.txt] [--once | --interval 5 --polls N]
    python manage.py simulate_device --protocol app --private-token … \\
        [--server-url http://127.0.0.1:8000/api/mobile/v1] [--fail-to +1…] [--once | --polls N]

Each round: inject the inbound messages (first round only), poll for outgoing messages,
"send" them (print them), report them sent and then delivered. The app protocol instead runs
the app emulator (phones/smsgateway/emulator.py): it registers, holds the event stream and
reacts to it, and reports through the mobile API and its signed webhooks
(docs/phones/README.md). Nothing leaves the machine except the HTTP requests to the server.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from phones.smsgateway.emulator import AppHttpError, AppPhone
from phones.smsgateway.emulator_state import DELIVERED, NO_REPORT, Outcome, failed


def _parse_inbound(spec: str) -> tuple[str, str]:
    sender, sep, text = spec.partition(":")
    if not sep or not sender.strip() or not text:
        raise CommandError(f"inbound message {spec!r} must look like '+15551234567:text'")
    return sender.strip(), text


class Phone:
    """What both protocols must do for the loop: inject, poll, report."""

    def __init__(self, session: requests.Session, server: str, options: dict[str, Any]) -> None:
        self.session = session
        self.server = server.rstrip("/")
        self.device_id: str = options["device_id"]
        self.token: str = options["token"] or ""
        self.secret: str = options["secret"] or ""
        self.timeout = 30

    def inject(self, messages: list[tuple[str, str]]) -> str:
        raise NotImplementedError

    def poll(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def report(self, uuids: list[str], status: str) -> str:
        raise NotImplementedError


class MSyncPhone(Phone):
    def _post(self, action: str, **fields: Any) -> dict[str, Any]:
        response = self.session.post(
            f"{self.server}/api/sms/msync",
            json={"action": action, "device_id": self.device_id, **fields},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise CommandError(f"MSync {action}: HTTP {response.status_code} {response.text[:300]}")
        return dict(response.json())

    def inject(self, messages: list[tuple[str, str]]) -> str:
        now = int(time.time() * 1000)
        result = self._post(
            "incoming",
            messages=[
                {
                    "from": sender,
                    "message": text,
                    "timestamp": now + i,
                    "sim_slot": 1,
                    "id": str(uuid.uuid4()),
                }
                for i, (sender, text) in enumerate(messages)
            ],
        )
        return f"received {result['received']}, duplicates {result['duplicates']}"

    def poll(self) -> list[dict[str, Any]]:
        self._post(
            "status", battery_level=87, signal_strength=-71, network_type="LTE", sim_state="READY"
        )
        return list(self._post("outgoing")["messages"])

    def report(self, uuids: list[str], status: str) -> str:
        now = int(time.time() * 1000)
        result = self._post(
            "delivery",
            reports=[{"uuid": u, "status": status, "timestamp": now} for u in uuids],
        )
        return f"updated {result['updated']}"


class SMSSyncPhone(Phone):
    """SMSSync 3.1.1 with "Get reply from server", task checking and the Message Results API."""

    HEADERS = {"User-Agent": "SMSSync-Android/v3.1.1"}

    def _headers(self) -> dict[str, str]:
        headers = dict(self.HEADERS)
        if self.token:
            basic = base64.b64encode(f"{self.device_id}:{self.token}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        return headers

    def _url(self, task: str = "") -> str:
        url = f"{self.server}/api/sms/smssync"
        if task:
            url += f"?task={task}"
            if self.secret:
                url += "&secret=" + requests.utils.quote(self.secret, safe="")
        return url

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code not in (200, 201):
            raise CommandError(f"SMSSync {what}: HTTP {response.status_code} {response.text[:300]}")
        return dict(response.json())

    def inject(self, messages: list[tuple[str, str]]) -> str:
        stored = 0
        for sender, text in messages:
            form = {
                "secret": self.secret,
                "from": sender,
                "message": text,
                "sent_timestamp": str(int(time.time() * 1000)),
                "sent_to": "",
                "message_id": str(uuid.uuid4()),
                "device_id": "simulator",
            }
            response = self.session.post(
                self._url(), data=form, headers=self._headers(), timeout=self.timeout
            )
            payload = self._json(response, "incoming")["payload"]
            if payload.get("success") not in (True, "true"):
                raise CommandError(f"SMSSync incoming refused: {payload.get('error')}")
            stored += 1
        return f"posted {stored}"

    def poll(self) -> list[dict[str, Any]]:
        response = self.session.get(
            self._url("send"), headers=self._headers(), timeout=self.timeout
        )
        payload = self._json(response, "task=send").get("payload", {})
        if payload.get("task") != "send" or (self.secret and payload.get("secret") != self.secret):
            return []
        messages = list(payload.get("messages", []))
        if not messages:
            return []
        ack = self.session.post(
            self._url("sent").split("&secret=")[0],
            json={"queued_messages": [m["uuid"] for m in messages]},
            headers=self._headers(),
            timeout=self.timeout,
        )
        allowed = set(self._json(ack, "task=sent").get("message_uuids", []))
        return [m for m in messages if m["uuid"] in allowed]

    def report(self, uuids: list[str], status: str) -> str:
        delivered = -1 if status == "delivered" else 0
        body: dict[str, Any] = {
            "message_result": [
                {
                    "uuid": u,
                    "sent_result_code": 0,
                    "sent_result_message": "SMSSync Message Sent",
                    "delivered_result_code": delivered,
                }
                for u in uuids
            ]
        }
        response = self.session.post(
            self._url("result"), json=body, headers=self._headers(), timeout=self.timeout
        )
        self._json(response, "task=result")
        return "ok"


class Command(BaseCommand):
    help = "Simulate a phone (MSync or SMSSync) against a running smsgate server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", default="http://127.0.0.1:8000")
        parser.add_argument("--protocol", choices=["msync", "smssync", "app"], default="msync")
        parser.add_argument("--device-id", help="the device (MSync, SMSSync)")
        parser.add_argument(
            "--server-url",
            help="the app's server URL (default: --server + /api/mobile/v1)",
        )
        parser.add_argument("--private-token", default="", help="the pairing's private token (app)")
        parser.add_argument(
            "--fail-to", action="append", default=[], help="sends to this number fail (app)"
        )
        parser.add_argument("--token", default="", help="device token (MSync; SMSSync Basic auth)")
        parser.add_argument("--secret", default="", help="SMSSync secret")
        parser.add_argument(
            "--inbound", action="append", default=[], help="'+15551234567:text' (repeatable)"
        )
        parser.add_argument("--inbound-file", help="a file with one '+15551234567:text' per line")
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument("--polls", type=int, default=0, help="stop after N rounds (0: never)")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
        parser.add_argument(
            "--no-delivery", action="store_true", help="report sent but never delivered"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["protocol"] != "app" and not options["device_id"]:
            raise CommandError("MSync and SMSSync need --device-id")
        if options["protocol"] == "app" and not options["private_token"]:
            raise CommandError("the app protocol needs --private-token")
        if options["protocol"] == "msync" and not options["token"]:
            raise CommandError("MSync needs --token")
        if options["protocol"] == "smssync" and not (options["secret"] or options["token"]):
            raise CommandError("SMSSync needs --secret (or --token for Basic auth)")
        inbound = [_parse_inbound(spec) for spec in options["inbound"]]
        if options["inbound_file"]:
            lines = Path(options["inbound_file"]).read_text(encoding="utf-8").splitlines()
            inbound += [_parse_inbound(line) for line in lines if line.strip()]
        if options["protocol"] == "app":
            self._run_app(inbound, options)
            return
        phone_class = MSyncPhone if options["protocol"] == "msync" else SMSSyncPhone
        with requests.Session() as session:
            phone = phone_class(session, options["server"], options)
            if inbound:
                self.stdout.write(f"inbound: {phone.inject(inbound)}")
            rounds = 1 if options["once"] else options["polls"]
            done = 0
            while True:
                self._round(phone, deliver=not options["no_delivery"])
                done += 1
                if rounds and done >= rounds:
                    break
                time.sleep(options["interval"])

    def _round(self, phone: Phone, *, deliver: bool) -> None:
        messages = phone.poll()
        for message in messages:
            self.stdout.write(f"send to {message['to']}: {message['message']} ({message['uuid']})")
        if not messages:
            self.stdout.write("nothing to send")
            return
        uuids = [m["uuid"] for m in messages]
        self.stdout.write(f"sent: {phone.report(uuids, 'sent')}")
        if deliver:
            self.stdout.write(f"delivered: {phone.report(uuids, 'delivered')}")

    def _run_app(self, inbound: list[tuple[str, str]], options: dict[str, Any]) -> None:
        base = options["server_url"] or options["server"].rstrip("/") + "/api/mobile/v1"
        ok = NO_REPORT if options["no_delivery"] else DELIVERED
        failing = set(options["fail_to"])

        def outcome(number: str) -> Outcome:
            return failed() if number in failing else ok

        phone = AppPhone(base, options["private_token"], name="smsgate/simulator", outcome=outcome)
        try:
            phone.start()
        except (requests.RequestException, AppHttpError, ValueError) as exc:
            raise CommandError(f"app start-up: {exc}") from exc
        self.stdout.write(f"registered as {phone.device_id}; webhooks: {len(phone.webhooks)}")
        for sender, text in inbound:
            self.stdout.write(f"received from {sender}: {phone.receive_sms(sender, text)}")
        shown = self._show_app(phone, 0, 0)
        if options["once"]:
            return
        phone.start_thread(start=False)
        try:
            done = 0
            while not options["polls"] or done < options["polls"]:
                time.sleep(options["interval"])
                shown = self._show_app(phone, *shown)
                done += 1
        finally:
            phone.stop()

    def _show_app(self, phone: AppPhone, events: int, patches: int) -> tuple[int, int]:
        for event in phone.stream_events[events:]:
            self.stdout.write(f"stream: {event.name or 'MessageEnqueued'} {event.data}")
        reports = [e for e in phone.exchanges if e.method == "PATCH" and "/message" in e.url]
        for exchange in reports[patches:]:
            for item in json.loads(exchange.body or "[]"):
                self.stdout.write(f"report {item['id']}: {item['state']} (HTTP {exchange.status})")
        for error in phone.errors:
            self.stderr.write(error)
        phone.errors.clear()
        return len(phone.stream_events), len(reports)
