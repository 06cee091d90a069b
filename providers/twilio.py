"""Twilio Programmable Messaging (docs/providers/twilio.md).

Incoming messages and status callbacks arrive on the same receive URL, signed with
`X-Twilio-Signature` (HMAC-SHA1 of the URL Twilio called plus every POST parameter, with the
account's auth token). Automation replies go back in the answer as TwiML `<Message>`s.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from messaging.inbox import InboundSMS
from messaging.models import Message, ProviderApp, Status
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
    call_api,
    error_for_status,
    form_params,
    provider_number,
    receive_url,
    require,
    response_json,
    without_nul,
    xml_response,
)

# Twilio's MessageStatus values mapped onto ours; the ones before "sent" say nothing new
# (the API's acceptance already made the message `sent` here).
STATUS_MAP: dict[str, str | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}


def public_url(request: HttpRequest) -> str:
    """The URL Twilio called, as Twilio saw it: what the signature covers.

    Behind a reverse proxy the host and scheme Django sees are not the public ones; either
    SMSGATE_PUBLIC_URL names the public base, or SMSGATE_TRUST_PROXY makes Django honour
    X-Forwarded-Proto/X-Forwarded-Host.
    """
    if settings.SMSGATE_PUBLIC_URL:
        return settings.SMSGATE_PUBLIC_URL + request.get_full_path()
    return request.build_absolute_uri()


class Twilio(Provider):
    name = ProviderApp.Provider.TWILIO
    label = "Twilio"
    answers_with_replies = True
    # The auth token verifies every request Twilio signs, so even a receive-only app needs it.
    inbound_credentials = ("auth_token",)
    send_credentials = ("account_sid", "auth_token")
    optional_credentials = ("messaging_service_sid",)

    def check_credentials(self, credentials: dict[str, str]) -> dict[str, list[str]]:
        sid = credentials.get("account_sid", "")
        if sid and not sid.startswith("AC"):
            return {"account_sid": ["A Twilio Account SID starts with AC."]}
        return {}

    # --- receiving ----------------------------------------------------------------------------

    def parse(self, context: ReceiveContext) -> Parsed:
        request = context.request
        if request.method not in ("GET", "POST"):
            raise Rejected(405, "method_not_allowed", "Twilio sends GET or POST.")
        params = form_params_or_empty(request)
        self._verify(request, params, context.credentials.get("auth_token", ""))
        source = params if request.method == "POST" else request.GET
        values = without_nul({key: str(source.get(key, "")) for key in source})
        if values.get("MessageStatus"):
            return self._status_callback(context, values)
        return self._incoming(context, values)

    def _verify(self, request: HttpRequest, params: QueryDict, auth_token: str) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
        )
        # For GET the parameters are in the URL, which is signed as a whole.
        if (
            not signature
            or not auth_token
            or not RequestValidator(auth_token).validate(
                public_url(request), params, signature, algorithm=algorithm
            )
        ):
            raise Rejected(
                403, "invalid_signature", "The X-Twilio-Signature does not match this request."
            )

    def _incoming(self, context: ReceiveContext, values: dict[str, str]) -> Parsed:
        sender = values.get("From", "")
        if not sender:
            raise Rejected(400, "invalid", "From is required.")
        sid = values.get("MessageSid") or values.get("SmsMessageSid") or values.get("SmsSid") or ""
        metadata: dict[str, object] = {
            key: values.get(key, "")
            for key in ("NumSegments", "NumMedia", "MessagingServiceSid")
            if values.get(key)
        }
        media = [values.get(f"MediaUrl{n}", "") for n in range(_int(values.get("NumMedia")))]
        if any(media):
            metadata["media"] = [url for url in media if url]
        sms = InboundSMS(
            from_number=provider_number(sender),
            to_number=provider_number(values.get("To", "")),
            body=values.get("Body", ""),
            source=self.name,
            app=context.app,
            source_id=sid,
            metadata=metadata,
        )
        return Incoming(sms, answer=xml_response(str(MessagingResponse())))

    def answer_with_replies(
        self, context: ReceiveContext, incoming: Incoming, replies: list[Message]
    ) -> HttpResponse:
        """The replies automation queued, as TwiML <Message>s: Twilio sends them itself."""
        twiml = MessagingResponse()
        callback = receive_url(context.app, context.request)
        for reply in replies:
            attributes: dict[str, str] = {}
            if reply.to_number and reply.to_number != incoming.sms.from_number:
                attributes["to"] = reply.to_number
            if callback:
                # Twilio reports the reply's status here; the query names our message
                # because the reply's MessageSid is only known once Twilio sends it.
                attributes["action"] = f"{callback}?{urlencode({'message': reply.pk})}"
                attributes["method"] = "POST"
            twiml.message(reply.body, **attributes)
        return xml_response(str(twiml))

    def _status_callback(self, context: ReceiveContext, values: dict[str, str]) -> Parsed:
        raw_status = values.get("MessageStatus", "").lower()
        sid = values.get("MessageSid") or values.get("SmsSid") or ""
        error_code = values.get("ErrorCode", "")
        status = STATUS_MAP.get(raw_status)
        detail = f"Twilio status {raw_status}" + (f", error {error_code}" if error_code else "")
        return Report(
            provider_message_id=sid,
            message_id=context.request.GET.get("message", "").replace("\x00", ""),
            status=status,
            detail=detail,
            reason=f"Twilio {raw_status}" + (f" (error {error_code})" if error_code else ""),
            answer=xml_response(str(MessagingResponse())),
        )

    # --- sending ------------------------------------------------------------------------------

    def send(self, request: SendRequest) -> SendResult:
        credentials, message = request.credentials, request.message
        account, token = require(credentials, "account_sid", "auth_token")
        data = {"To": message.to_number, "Body": message.body}
        sender = message.from_number or (request.app.numbers or [""])[0]
        if credentials.get("messaging_service_sid"):
            data["MessagingServiceSid"] = credentials["messaging_service_sid"]
        elif sender:
            data["From"] = sender
        else:
            raise PermanentSendError("The Twilio app has no number to send from.")
        if request.callback_url:
            data["StatusCallback"] = request.callback_url
        url = (
            f"{settings.SMSGATE_TWILIO_API_URL.rstrip('/')}/2010-04-01/Accounts/"
            f"{quote(account, safe='')}/Messages.json"
        )
        response = call_api("POST", url, data=data, auth=(account, token))
        body = response_json(response)
        if response.status_code in (200, 201):
            sid = str(body.get("sid") or "")
            return SendResult(sid, detail=f"accepted by Twilio as {sid or 'an unnamed message'}")
        reason = f"Twilio answered HTTP {response.status_code}"
        if body.get("code") or body.get("message"):
            reason += f": error {body.get('code')}: {body.get('message')}"
        raise error_for_status(response, reason)

    def callback_url(self, app: ProviderApp, message: Message) -> str | None:
        base = receive_url(app)
        return f"{base}?{urlencode({'message': message.pk})}" if base else None


def form_params_or_empty(request: HttpRequest) -> QueryDict:
    """POST parameters for the signature; a GET has none (its query is part of the URL)."""
    if request.method != "POST":
        return QueryDict("")
    return form_params(request)


def _int(raw: str | None) -> int:
    try:
        return max(0, min(int(raw or 0), 10))
    except ValueError:
        return 0
