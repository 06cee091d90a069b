"""Vonage (Nexmo) SMS API (docs/providers/vonage.md).

Inbound messages and delivery receipts come as a GET query, a form POST or a JSON POST
(the dashboard's "webhook format"), optionally signed with `sig`. Long messages arrive one
webhook per part and are reassembled. Replies go out through the SMS API.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from messaging.encoding import segment_info
from messaging.inbox import InboundSMS
from messaging.models import Encoding, ProviderApp, Status
from providers.base import (
    Ignored,
    Incoming,
    Parsed,
    Part,
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

SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")

DLR_STATUS: dict[str, str | None] = {
    "delivered": Status.DELIVERED,
    "accepted": Status.SENT,
    "buffered": Status.SENT,
    "expired": Status.FAILED,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
    "unknown": None,
}

# SMS API send statuses worth trying again: throttled, internal error, too many binds.
TEMPORARY_SEND_STATUSES = frozenset({"1", "5", "10"})


def signature_base(params: dict[str, str]) -> str:
    """`&k1=v1&k2=v2…` over every parameter but `sig`, keys sorted, '&' and '=' in values → '_'."""
    return "".join(
        f"&{key}={value.replace('&', '_').replace('=', '_')}"
        for key, value in sorted(params.items())
        if key != "sig"
    )


def compute_signature(params: dict[str, str], secret: str, method: str) -> str:
    """Lower-case hex; `md5hash` is plain MD5 of base + secret, the others HMACs."""
    base = signature_base(params)
    if method == "md5hash":
        return hashlib.md5((base + secret).encode()).hexdigest()  # noqa: S324 (Vonage's scheme)
    return hmac.new(secret.encode(), base.encode(), getattr(hashlib, method)).hexdigest()


def signature_is_valid(params: dict[str, str], secret: str, method: str) -> bool:
    received = params.get("sig", "").strip().lower()
    expected = compute_signature(params, secret, method)
    # Vonage's own examples are upper-case hex, its Python SDK lower-case: compare either.
    return bool(received) and hmac.compare_digest(expected, received)


def _vonage_number(number: str) -> str:
    """Vonage wants international digits without '+'; alphanumeric sender ids as they are."""
    return number[1:] if number.startswith("+") else number


class Vonage(Provider):
    name = ProviderApp.Provider.VONAGE
    label = "Vonage"
    # Inbound is verified with the optional signature secret only.
    send_credentials = ("api_key", "api_secret")
    optional_credentials = ("signature_secret", "signature_method")

    def check_credentials(self, credentials: dict[str, str]) -> dict[str, list[str]]:
        method = credentials.get("signature_method", "")
        if method and method.lower() not in SIGNATURE_METHODS:
            return {"signature_method": [f"Must be one of {', '.join(SIGNATURE_METHODS)}."]}
        if method:
            credentials["signature_method"] = method.lower()
        return {}

    # --- receiving ----------------------------------------------------------------------------

    def parse(self, context: ReceiveContext) -> Parsed:
        params = read_params(context.request, context.body)
        if not params:
            # The dashboard checks a webhook URL with an empty request before saving it.
            return Ignored("empty request, nothing to store")
        self._verify(params, context.credentials)
        if "status" in params and "text" not in params and "type" not in params:
            return self._delivery_receipt(context, params)
        return self._incoming(context, params)

    def _verify(self, params: dict[str, str], credentials: dict[str, str]) -> None:
        secret = credentials.get("signature_secret", "")
        if not secret:
            return
        method = credentials.get("signature_method") or "md5hash"
        if not signature_is_valid(params, secret, method):
            raise Rejected(403, "invalid_signature", "The sig does not match this request.")
        max_age = settings.SMSGATE_VONAGE_SIGNATURE_MAX_AGE
        if max_age:
            try:
                age = abs(time.time() - int(params.get("timestamp", "")))
            except ValueError:
                age = max_age + 1
            if age > max_age:
                raise Rejected(403, "stale_signature", "The signed timestamp is too old.")

    def _incoming(self, context: ReceiveContext, params: dict[str, str]) -> Parsed:
        msisdn = params.get("msisdn", "").strip()
        if not msisdn:
            raise Rejected(400, "invalid", "msisdn is required.")
        message_id = params.get("messageId", "").strip()
        kind = params.get("type", "text")
        metadata: dict[str, object] = {"type": kind}
        if kind == "binary":
            metadata.update({"data": params.get("data", ""), "udh": params.get("udh", "")})
        sms = InboundSMS(
            from_number=provider_number(msisdn),
            to_number=provider_number(params.get("to", "")),
            body=params.get("text", ""),
            source=self.name,
            app=context.app,
            source_id=message_id,
            received_at=parse_timestamp(
                params.get("message-timestamp", ""), ("%Y-%m-%d %H:%M:%S",)
            ),
            metadata=metadata,
        )
        if params.get("concat", "").lower() == "true":
            return self._part(sms, params, message_id)
        return Incoming(sms)

    def _part(self, sms: InboundSMS, params: dict[str, str], message_id: str) -> Parsed:
        ref = params.get("concat-ref", "").strip()
        try:
            total = int(params.get("concat-total", ""))
            part = int(params.get("concat-part", ""))
        except ValueError:
            raise Rejected(
                400, "invalid", "concat-total and concat-part must be numbers."
            ) from None
        if not ref or not 1 <= total <= 255 or not 1 <= part <= total:
            raise Rejected(400, "invalid", "concat-ref, concat-total or concat-part is not valid.")
        return Part(
            sms=sms,
            ref=ref,
            part=part,
            total=total,
            part_id=message_id or f"{sms.from_number}:{ref}:{total}:{part}",
        )

    def _delivery_receipt(self, context: ReceiveContext, params: dict[str, str]) -> Parsed:
        raw_status = params.get("status", "").lower()
        error_code = params.get("err-code", "")
        detail = f"Vonage DLR {raw_status}" + (f", err-code {error_code}" if error_code else "")
        return Report(
            provider_message_id=params.get("messageId", ""),
            message_id=params.get("client-ref", ""),
            status=DLR_STATUS.get(raw_status),
            detail=detail,
            reason=detail,
        )

    # --- sending ------------------------------------------------------------------------------

    def send(self, request: SendRequest) -> SendResult:
        credentials, message = request.credentials, request.message
        api_key, api_secret = require(credentials, "api_key", "api_secret")
        sender = message.from_number or (request.app.numbers or [""])[0]
        if not sender:
            raise PermanentSendError("The Vonage app has no number to send from.")
        data = {
            "api_key": api_key,
            "api_secret": api_secret,
            "from": _vonage_number(sender),
            "to": _vonage_number(message.to_number),
            "text": message.body,
            # Echoed in delivery receipts: finds the message even before its id is stored.
            "client-ref": message.pk,
            "type": "unicode" if segment_info(message.body).encoding == Encoding.UCS2 else "text",
        }
        if request.callback_url:
            data["callback"] = request.callback_url
            data["status-report-req"] = "1"
        url = f"{settings.SMSGATE_VONAGE_API_URL.rstrip('/')}/sms/json"
        response = call_api("POST", url, data=data)
        if response.status_code != 200:
            raise error_for_status(response, f"Vonage answered HTTP {response.status_code}")
        parts = response_json(response).get("messages") or []
        if not isinstance(parts, list) or not parts:
            raise TemporarySendError("Vonage answered without a message status.")
        for part in parts:
            status = str(part.get("status", "")) if isinstance(part, dict) else ""
            if status != "0":
                text = part.get("error-text", "") if isinstance(part, dict) else ""
                reason = f"Vonage status {status or '?'}: {text or 'refused'}"
                if status in TEMPORARY_SEND_STATUSES:
                    raise TemporarySendError(reason)
                raise PermanentSendError(reason)
        first = parts[0].get("message-id", "")
        return SendResult(
            str(first), detail=f"accepted by Vonage as {first} ({len(parts)} part(s))"
        )
