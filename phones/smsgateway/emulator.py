"""An emulator of the SMS Gateway for Android app in private-server mode, without Google push.

It follows the app's source (v1.68.0) step by step, so that tests and `simulate_device
--protocol app` exercise smsgate's mobile API as a real phone would (docs/phones/README.md, "The
app emulator"): register (`POST /device`, or `PATCH /device` when it already has a token), read
`/settings` and `/webhooks`, hold the `/events` stream and reconnect as the app does, pull
`/message` on every (re)connect and on `MessageEnqueued`, "send" each Pending message with a
chosen outcome per recipient, report every state change with `PATCH /message`, and send the
app's signed webhooks. Everything it received and sent is kept for tests to read. One thread
per phone at most: `start_thread` runs start-up and stream; `receive_sms`/`ping` run in the
caller's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import requests
from urllib3.exceptions import HTTPError as StreamBroken

from messaging.encoding import segment_info
from phones.smsgateway.emulator_state import (
    DELIVERED,
    KNOWN_WEBHOOK_EVENTS,
    STREAM_EVENTS,
    AppHttpError,
    Delays,
    Exchange,
    LocalMessage,
    Outcome,
    Received,
    Sim,
    StreamEvent,
    setting_problem,
)
from phones.smsgateway.emulator_wire import (
    SSE_USER_AGENT,
    USER_AGENT,
    SseEvent,
    SseReader,
    app_timestamp,
    gson_dumps,
    health_payload,
    nanoid,
    received_message_id,
    shutdown,
    sign,
)


class AppPhone:
    def __init__(
        self,
        base_url: str,
        private_token: str,
        *,
        name: str = "Google/sdk_gphone64_x86_64",
        sims: list[Sim] | None = None,
        outcome: Callable[[str], Outcome] = lambda _recipient: DELIVERED,
        delays: Delays | None = None,
        tz: tzinfo = UTC,
        webhook_attempts: int = 3,
        patch_attempts: int = 3,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.private_token = private_token
        self.name = name
        self.sims = sims or [Sim(0, "+15550001111", "Emulated Carrier", "8901260000000000001", 1)]
        self.outcome = outcome
        self.delays = delays or Delays()
        self.tz = tz
        self.webhook_attempts = webhook_attempts
        self.patch_attempts = patch_attempts
        self.session = session or requests.Session()
        self.device_id: str | None = None
        self.token: str | None = None
        self.login: str | None = None
        self.password: str | None = None
        self.settings: dict[str, Any] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.messages: dict[str, LocalMessage] = {}
        self.inbox: list[Received] = []
        self.exchanges: list[Exchange] = []
        self.stream_events: list[StreamEvent] = []
        self.reader = SseReader()
        self.connected_at: list[float] = []
        self.reconnect_waits: list[float] = []
        self.errors: list[str] = []
        self._generated_key: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._stream: requests.Response | None = None
        self._opened_last = False
        self._thread: threading.Thread | None = None

    # HTTP ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, body: Any = None, auth: str | None = None) -> Any:
        url = self.base_url + path
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Charset": "UTF-8",
            "Authorization": auth or f"Bearer {self.token}",
        }
        text = None if body is None else gson_dumps(body)
        if text is not None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        exchange = Exchange(method, url, headers, text)
        with self._lock:
            self.exchanges.append(exchange)
        response = self.session.request(
            method, url, data=None if text is None else text.encode(), headers=headers,
            timeout=(self.delays.connect_timeout, 30.0),
        )  # fmt: skip
        exchange.status = response.status_code
        if not 200 <= response.status_code < 300:
            raise AppHttpError(method, url, response.status_code, response.text)
        return response.json() if response.content else None

    # Start-up --------------------------------------------------------------------------------

    def register(self) -> None:
        """`GatewayService.registerDevice`: PATCH with a known token, POST on none or a 401."""
        cards = [sim.card(redact=True) for sim in self.sims]
        if self.token is not None:
            try:
                body = {"id": self.device_id, "pushToken": None, "simCards": cards}
                self._call("PATCH", "/device", body=body)
                return
            except AppHttpError as exc:
                if exc.status != 401:
                    raise
        answer = self._call(
            "POST",
            "/device",
            body={"name": self.name, "pushToken": None, "simCards": cards},
            auth=f"Bearer {self.private_token}",
        )
        self.device_id, self.token = answer["id"], answer["token"]
        self.login, self.password = answer.get("login"), answer.get("password")

    def sync_settings(self) -> None:
        for group, values in dict(self._call("GET", "/settings") or {}).items():
            problem = setting_problem(group, values)
            if problem:
                raise ValueError(f"Failed to import {group}: {problem}")
            self.settings[group] = {**self.settings.get(group, {}), **values}

    def sync_webhooks(self) -> None:
        hooks = list(self._call("GET", "/webhooks") or [])
        # Gson leaves an unknown event null and the app's sync then fails as a whole: it keeps
        # its previous list and retries later.
        unknown = [h.get("event") for h in hooks if h.get("event") not in KNOWN_WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(f"unknown webhook events {unknown}")
        self.webhooks = hooks

    def start(self) -> None:
        """What the app does when it starts in cloud mode, in the order its effects reach us.

        `app:started` is emitted first, to the webhooks the phone already had: the app's
        registration and webhook sync run later as background work, so on a first start (no
        webhooks, no device id yet) it reaches nobody. The three syncs are separate workers in
        the app: one failing (kept in `errors`) does not stop the others.
        """
        self._emit("app:started", {"simCards": [sim.card(redact=False) for sim in self.sims]})
        self.register()
        for sync in (self.sync_settings, self.sync_webhooks, self.pull):
            self._safely(sync)

    # Messages --------------------------------------------------------------------------------

    def pull(self) -> None:
        order = (self.settings.get("messages") or {}).get("processing_order") or "LIFO"
        for message in self._call("GET", f"/message?order={str(order).lower()}") or []:
            try:
                self._process(message)
            except (requests.RequestException, AppHttpError, KeyError, ValueError) as exc:
                self.errors.append(f"message {message.get('id')}: {exc}")

    def _process(self, message: dict[str, Any]) -> None:
        state = message.get("state")
        if state == "Cancelling":
            # A message the phone never had is reported Cancelled; one it has is already past
            # Pending here (the emulator sends at once), so the app leaves it alone.
            if message["id"] not in self.messages:
                numbers = message["phoneNumbers"]
                self._patch(
                    {
                        "id": message["id"],
                        "state": "Cancelled",
                        "recipients": [{"phoneNumber": n, "state": "Cancelled"} for n in numbers],
                        "states": {"Cancelled": self._now()},
                    }
                )
            return
        if state not in (None, "Pending"):
            return
        known = self.messages.get(message["id"])
        if known is not None:
            self._report(known)
            return
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        content = message.get("textMessage") or {}
        text = content.get("text") or (message.get("dataMessage") or {}).get("data") or ""
        text = text or message.get("message") or ""
        numbers: list[str] = list(message["phoneNumbers"])
        local = LocalMessage(
            id=message["id"],
            text=text,
            sim_number=message.get("simNumber") or self.sims[0].sim_number,
            with_delivery_report=message.get("withDeliveryReport") is not False,
            recipients={n: ("Pending", None) for n in numbers},
            states={"Pending": datetime.now(UTC)},
        )
        with self._lock:
            self.messages[local.id] = local
        valid_until = message.get("validUntil")
        if valid_until and datetime.fromisoformat(valid_until) < datetime.now(UTC):
            # Checked just before sending: every recipient fails at once, nothing goes out.
            self._change(local, numbers, "Failed", "TTL expired")
            return
        for number in numbers:
            self._change(local, [number], "Processed", None)
        outcomes = {n: self.outcome(n) for n in numbers}
        for number in numbers:
            if outcomes[number].sent:
                self._change(local, [number], "Sent", None)
            else:
                self._change(local, [number], "Failed", outcomes[number].error)
        for number in numbers:
            if local.with_delivery_report and outcomes[number].delivered:
                self._change(local, [number], "Delivered", None)

    def _change(
        self, local: LocalMessage, numbers: list[str], state: str, error: str | None
    ) -> None:
        """`MessagesService.updateState`: recipients move, the whole message is reported once,
        and each moved recipient gets its own webhook."""
        moved = [n for n in numbers if local.recipients[n][0] != "Failed"]
        if not moved:
            return
        for number in moved:
            local.recipients[number] = (state, error)
        local.states.setdefault(local.state, datetime.now(UTC))
        self._report(local)
        event = {"Sent": "sms:sent", "Delivered": "sms:delivered", "Failed": "sms:failed"}
        if state not in event:
            return
        sim = self._sim(local.sim_number)
        for number in moved:
            payload: dict[str, Any]
            if state == "Sent":
                payload = {"partsCount": segment_info(local.text).segments, "sentAt": self._now()}
            elif state == "Delivered":
                payload = {"deliveredAt": self._now()}
            else:
                payload = {"failedAt": self._now(), "reason": error or "Unknown"}
            payload.update(
                {
                    "messageId": local.id,
                    "sender": sim.phone_number if sim else None,
                    "recipient": number,
                    "simNumber": local.sim_number,
                    "phoneNumber": number,
                }
            )
            self._emit(event[state], payload)

    def _report(self, local: LocalMessage) -> None:
        self._patch(
            {
                "id": local.id,
                "state": local.state,
                "recipients": [
                    {"phoneNumber": n, "state": s, "error": e}
                    for n, (s, e) in local.recipients.items()
                ],
                "states": {s: app_timestamp(t, self.tz) for s, t in local.states.items()},
            }
        )

    def _patch(self, item: dict[str, Any]) -> None:
        # SendStateWorker sends one item per state change and retries with a doubling backoff.
        for attempt in range(1, self.patch_attempts + 1):
            try:
                self._call("PATCH", "/message", body=[item])
                return
            except (requests.RequestException, AppHttpError) as exc:
                self.errors.append(f"PATCH /message {item['id']}: {exc}")
                if attempt < self.patch_attempts:
                    self._stop.wait(self.delays.patch_retry * 2 ** (attempt - 1))

    # Received SMS, pings, webhooks -----------------------------------------------------------

    def receive_sms(
        self, sender: str, text: str, *, sim_number: int = 1, received_at: datetime | None = None
    ) -> str:
        sim = self._sim(sim_number) or self.sims[0]
        # SMS centre time stamps have whole seconds.
        moment = received_at or datetime.now(UTC).replace(microsecond=0)
        millis = int(moment.timestamp() * 1000)
        received = Received(
            received_message_id(sender, millis, sim.subscription_id, text),
            sender,
            text,
            sim,
            moment,
        )
        with self._lock:
            self.inbox.append(received)
        self._emit_received(received)
        return received.message_id

    def _emit_received(self, received: Received) -> None:
        self._emit("sms:received", received.payload(app_timestamp(received.received_at, self.tz)))

    def ping(self) -> None:
        """What the ping service sends every `ping.interval_seconds` when that is set."""
        self._emit("system:ping", {"health": health_payload()})

    @property
    def signing_key(self) -> str:
        key = (self.settings.get("webhooks") or {}).get("signing_key")
        if key:
            return str(key)
        # Unset, the app makes up an 8-character key of its own and keeps it.
        if self._generated_key is None:
            self._generated_key = nanoid(8)
        return self._generated_key

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if self.device_id is None:
            return
        for hook in [h for h in self.webhooks if h.get("event") == event]:
            envelope = {
                "id": nanoid(),
                "webhookId": hook["id"],
                "event": event,
                "deviceId": self.device_id,
                "payload": payload,
            }
            self._post_webhook(str(hook["url"]), gson_dumps(envelope))

    def _post_webhook(self, url: str, body: str) -> None:
        retries = int((self.settings.get("webhooks") or {}).get("retry_count") or 15)
        attempts = min(1 + retries, self.webhook_attempts)
        for attempt in range(1, attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Charset": "UTF-8",
                "Content-Type": "application/json; charset=UTF-8",
                "X-Timestamp": timestamp,
                "X-Signature": sign(body, timestamp, self.signing_key),
            }
            exchange = Exchange("POST", url, headers, body)
            with self._lock:
                self.exchanges.append(exchange)
            try:
                response = self.session.post(url, data=body.encode(), headers=headers, timeout=30)
                exchange.status = response.status_code
                if 200 <= response.status_code < 300:
                    return
            except requests.RequestException as exc:
                self.errors.append(f"webhook {url}: {exc}")
            if attempt < attempts:
                self._stop.wait(self.delays.webhook_retry * 2 ** (attempt - 1))

    # The event stream ------------------------------------------------------------------------

    def run_stream(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._hold_stream()
            # Raw reads raise urllib3's errors (a stream cut mid-chunk), not requests'.
            except (
                requests.RequestException,
                StreamBroken,
                AppHttpError,
                OSError,
                ValueError,
            ) as exc:
                self.errors.append(f"stream: {exc}")
            if self._stop.is_set():
                return
            # A stream that ended cleanly counts like a failure; only an opened stream resets.
            failures = 0 if self._opened_last else failures
            failures += 1
            delay = self.delays.reconnect_after(failures)
            with self._lock:
                self.reconnect_waits.append(delay)
            self._stop.wait(delay)

    def _hold_stream(self) -> None:
        self._opened_last = False
        response = self.session.get(
            self.base_url + "/events",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "text/event-stream",
                "User-Agent": SSE_USER_AGENT,
            },
            stream=True,
            timeout=(self.delays.connect_timeout, self.delays.stream_read_timeout),
        )
        self._stream = response
        with response:
            kind = response.headers.get("Content-Type", "")
            if response.status_code != 200 or not kind.startswith("text/event-stream"):
                raise AppHttpError("GET", response.url, response.status_code, kind)
            self._opened_last = True
            with self._lock:
                self.connected_at.append(time.monotonic())
            self._safely(self.pull)
            self._read(response)

    def _read(self, response: requests.Response) -> None:
        pending = b""
        while not self._stop.is_set():
            chunk = response.raw.read1(8192)
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for line in lines:
                for event in self.reader.feed(line.decode("utf-8", "replace")):
                    self._on_event(event)

    def _on_event(self, event: SseEvent) -> None:
        with self._lock:
            self.stream_events.append(StreamEvent(event.name, event.data))
        name = "MessageEnqueued" if event.name is None else event.name
        if name not in STREAM_EVENTS:
            self.errors.append(f"unknown event {event.name!r}")
        elif name == "MessageEnqueued":
            self._safely(self.pull)
        elif name == "WebhooksUpdated":
            self._safely(self.sync_webhooks)
        elif name == "SettingsUpdated":
            self._safely(self.sync_settings)
        elif name == "MessagesExportRequested":
            self._safely(lambda: self._export(event.data))
        # MessageCancelled: the emulator holds no Pending message to cancel (it sends at once).

    def _export(self, data: str) -> None:
        request = json.loads(data)
        since, until = (datetime.fromisoformat(request[k]) for k in ("since", "until"))
        if str(request.get("triggerWebhooks", "true")).lower() == "false":
            return
        for received in list(self.inbox):
            if since <= received.received_at <= until:
                self._emit_received(received)

    def _safely(self, action: Callable[[], None]) -> None:
        try:
            action()
        except (requests.RequestException, AppHttpError, KeyError, ValueError) as exc:
            self.errors.append(f"{getattr(action, '__name__', 'action')}: {exc}")

    # Lifecycle -------------------------------------------------------------------------------

    def start_thread(self, *, start: bool = True) -> threading.Thread:
        """Run the start-up (unless done already) and then the stream in one thread."""

        def run() -> None:
            if start:
                self._safely(self.start)
            self.run_stream()

        self._stop.clear()
        self._thread = threading.Thread(target=run, name=f"app-phone-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._stream is not None:
            shutdown(self._stream)
        if self._thread is not None:
            self._thread.join(timeout)

    def _sim(self, sim_number: int) -> Sim | None:
        return next((s for s in self.sims if s.sim_number == sim_number), None)

    def _now(self) -> str:
        return app_timestamp(datetime.now(UTC), self.tz)
