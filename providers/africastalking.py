"""Africa's Talking SMS (docs/providers/africastalking.md).

Incoming messages and delivery reports are form POSTs to the callback URLs set in the
dashboard. They carry no signature, so an app can require a shared token in the URL query
(`?token=…`). Replies go out through the SMS API.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings

from messaging.inbox import InboundSMS
from messaging.models import ProviderApp, Status
from providers.base import (
    Incoming,
    Parsed,
    PermanentSendError,
    Provider,
    ReceiveContext,
    Rejected,
    Report,
    SendRequest,
    SendResult,
    TemporarySendError,
    call_api,
    error_for_status,
    parse_timestamp,
    provider_number,
    read_params,
    require,
    response_json,
)
from smsgate.phones import region_of

LIVE_API_URL = "https://api.africastalking.com"
SANDBOX_API_URL = "https://api.sandbox.africastalking.com"

REPORT_STATUS: dict[str, str | None] = {
    "sent": Status.SENT,
    "submitted": Status.SENT,
    "buffered": Status.SENT,
    "success": Status.DELIVERED,
    "rejected": Status.FAILED,
    "failed": Status.FAILED,
}

# Per-recipient statusCode of the send API: 100 Processed, 101 Sent, 102 Queued are accepted;
# 500 InternalServerError and 501 GatewayError may pass later; the rest (invalid number,
# blacklisted, insufficient balance…) will not.
ACCEPTED_CODES = frozenset({100, 101, 102})
TEMPORARY_CODES = frozenset({500, 501})


class AfricasTalking(Provider):
    name = ProviderApp.Provider.AFRICASTALKING
    label = "Africa's Talking"
    # Inbound is checked with the optional URL token only.
    send_credentials = ("username", "api_key")
    optional_credentials = ("token",)

    # --- receiving ----------------------------------------------------------------------------

    def parse(self, context: ReceiveContext) -> Parsed:
        token = context.credentials.get("token", "")
        given = context.request.GET.get("token", "")
        if token and not hmac.compare_digest(given.encode(), token.encode()):
            raise Rejected(403, "invalid_token", "The token in the URL query is missing or wrong.")
        if context.request.method != "POST":
            raise Rejected(405, "method_not_allowed", "Africa's Talking sends a form POST.")
        params = read_params(context.request, context.body)
        if "status" in params and "from" not in params:
            return self._delivery_report(context, params)
        return self._incoming(context, params)

    def _incoming(self, context: ReceiveContext, params: dict[str, str]) -> Parsed:
        sender = params.get("from", "").strip()
        if not sender:
            raise Rejected(400, "invalid", "from is required.")
        metadata = {k: params[k] for k in ("linkId", "networkCode") if params.get(k)}
        to_number = provider_number(params.get("to", ""))
        sms = InboundSMS(
            from_number=provider_number(sender, region=region_of(to_number)),
            to_number=to_number,
            body=params.get("text", ""),
            source=self.name,
            app=context.app,
            source_id=params.get("id", "").strip(),
            received_at=parse_timestamp(params.get("date", ""), ("%Y-%m-%d %H:%M:%S",)),
            metadata=metadata,
        )
        return Incoming(sms)

    def _delivery_report(self, context: ReceiveContext, params: dict[str, str]) -> Parsed:
        raw_status = params.get("status", "")
        failure = params.get("failureReason", "")
        detail = f"Africa's Talking {raw_status}" + (f": {failure}" if failure else "")
        return Report(
            provider_message_id=params.get("id", ""),
            status=REPORT_STATUS.get(raw_status.lower()),
            detail=detail,
            reason=detail,
        )

    # --- sending ------------------------------------------------------------------------------

    def send(self, request: SendRequest) -> SendResult:
        credentials, message = request.credentials, request.message
        username, api_key = require(credentials, "username", "api_key")
        base = settings.SMSGATE_AFRICASTALKING_API_URL or (
            SANDBOX_API_URL if username == "sandbox" else LIVE_API_URL
        )
        data = {"username": username, "to": message.to_number, "message": message.body}
        sender = message.from_number or (request.app.numbers or [""])[0]
        if sender:
            data["from"] = sender
        response = call_api(
            "POST",
            f"{base.rstrip('/')}/version1/messaging",
            headers={"apiKey": api_key, "Accept": "application/json"},
            data=data,
        )
        body = response_json(response)
        if response.status_code not in (200, 201):
            text = response.text[:200].strip()
            raise error_for_status(
                response, f"Africa's Talking answered HTTP {response.status_code}: {text}"
            )
        raw_summary = body.get("SMSMessageData")
        summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
        recipients = summary.get("Recipients") or []
        if (
            not isinstance(recipients, list)
            or not recipients
            or not isinstance(recipients[0], dict)
        ):
            raise PermanentSendError(
                f"Africa's Talking refused it: {summary.get('Message') or 'no recipient accepted'}"
            )
        recipient = recipients[0]
        try:
            code = int(recipient.get("statusCode", 0))
        except (TypeError, ValueError):
            code = 0
        if code in ACCEPTED_CODES:
            message_id = str(recipient.get("messageId") or "")
            return SendResult(message_id, detail=f"accepted by Africa's Talking as {message_id}")
        reason = f"Africa's Talking status {code}: {recipient.get('status') or 'refused'}"
        if code in TEMPORARY_CODES:
            raise TemporarySendError(reason)
        raise PermanentSendError(reason)
