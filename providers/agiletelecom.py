"""Agile Telecom inbound SMS (seeds/003).

The platform form-POSTs `originator`, `destination`, `date_time` (YYYYMMDDHHMMSS) and `text`
and treats anything but a body of exactly `+OK` as a failure, retrying after 15 minutes (3
attempts). There is no signature: `destination` must be one of the app's numbers. A slow
`+OK` makes it send the message again, so originator + date_time + text identifies it.
"""

from __future__ import annotations

from messaging.inbox import InboundSMS
from messaging.models import ProviderApp
from providers.base import (
    Incoming,
    Parsed,
    Provider,
    ReceiveContext,
    Rejected,
    parse_timestamp,
    provider_number,
    read_params,
    text_response,
)
from smsgate.phones import region_of

REQUIRED = ("originator", "destination", "date_time", "text")


def _refuse(status: int, code: str, message: str) -> Rejected:
    # Anything but "+OK" is a failure to Agile Telecom; the text says why in the raw log.
    return Rejected(status, code, message, response=text_response(f"-ERR {message}", status))


class AgileTelecom(Provider):
    name = ProviderApp.Provider.AGILETELECOM
    label = "Agile Telecom"
    # Inbound needs no credentials (the platform only wants `+OK`), and sending through Agile
    # Telecom is not implemented: every Agile app only receives. The account's credentials
    # may still be stored.
    optional_credentials = ("username", "password")
    sends = False

    def parse(self, context: ReceiveContext) -> Parsed:
        if context.request.method != "POST":
            raise _refuse(405, "method_not_allowed", "Agile Telecom sends a form POST.")
        try:
            params = read_params(context.request, context.body)
        except Rejected as exc:
            raise _refuse(exc.status_code, "invalid_body", exc.message) from None
        missing = [key for key in REQUIRED if key not in params]
        if missing:
            raise _refuse(400, "invalid", f"Missing {', '.join(missing)}.")
        stamp = params["date_time"].strip()
        received_at = (
            parse_timestamp(stamp, ("%Y%m%d%H%M%S",))
            if len(stamp) == 14 and stamp.isdigit()
            else None
        )
        if received_at is None:
            raise _refuse(400, "invalid", "date_time must be YYYYMMDDHHMMSS.")
        destination = provider_number(params["destination"])
        if destination not in context.app.numbers:
            raise _refuse(403, "unknown_destination", "destination is not a number of this app.")
        originator = params["originator"].strip()
        if not originator:
            raise _refuse(400, "invalid", "originator is empty.")
        # No source id: the dedup key is the sender, the timestamp and the text (the
        # platform's own advice), computed by messaging.inbox.dedup_key_for.
        sms = InboundSMS(
            from_number=provider_number(originator, region=region_of(destination)),
            to_number=destination,
            body=params["text"],
            source=self.name,
            app=context.app,
            received_at=received_at,
            metadata={"date_time": stamp},
        )
        return Incoming(sms, answer=text_response("+OK"))
