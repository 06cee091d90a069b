"""Automation end to end: inbound SMS through the real phone and provider endpoints (MSync,
SMSSync, Twilio, Agile Telecom), asserting replies, forwards, opt-outs and tags."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from twilio.request_validator import RequestValidator

from automation.models import RuleHit
from messaging.models import Conversation, Message, OptOut, Status
from tests.factories import PairedDevice

pytestmark = pytest.mark.django_db

CUSTOMER = "+15550001111"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"


# --- speaking the protocols ------------------------------------------------------------------


class MSyncPhone:
    def __init__(self, paired: PairedDevice) -> None:
        self.paired = paired
        self.client = Client()
        self.count = 0

    def post(self, action: str, **fields: Any) -> Any:
        body = {"action": action, "device_id": self.paired.device.pk, **fields}
        return self.client.post(
            "/api/sms/msync",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.paired.token}",
        )

    def text(self, body: str, sender: str = CUSTOMER, sim_slot: int = 1) -> Any:
        self.count += 1
        response = self.post(
            "incoming",
            messages=[
                {
                    "from": sender,
                    "message": body,
                    "timestamp": 1767000000000 + self.count,
                    "sim_slot": sim_slot,
                    "id": f"in-{self.count}",
                }
            ],
        )
        assert response.status_code == 200, response.content
        assert response.json()["received"] == 1
        return response

    def poll(self) -> list[dict[str, Any]]:
        response = self.post("outgoing")
        assert response.status_code == 200
        return list(response.json()["messages"])


@pytest.fixture
def msync(phone: PairedDevice) -> MSyncPhone:
    return MSyncPhone(phone)


def smssync_text(paired: PairedDevice, body: str, message_id: str) -> Any:
    form = urlencode(
        {
            "secret": paired.secret,
            "from": CUSTOMER,
            "message": body,
            "sent_timestamp": "1767000000000",
            "sent_to": paired.device.sims.get(slot=1).number,
            "message_id": message_id,
            "device_id": "kiosk-1",
        }
    )
    response = Client(HTTP_USER_AGENT="SMSSync-Android/v3.1.1").post(
        "/api/sms/smssync", data=form, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    return response.json()["payload"]


def create_app(client: Any, provider: str, credentials: dict[str, str], number: str) -> str:
    response = client.post(
        "/api/v1/apps",
        {"provider": provider, "name": provider, "credentials": credentials, "numbers": [number]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def twilio_text(app_id: str, body: str, sid: str) -> Any:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": CUSTOMER,
        "To": "+15557770001",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    path = f"/api/sms/apps/{app_id}/receive"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"http://testserver{path}", params)
    return Client().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def twiml_messages(response: Any) -> list[str]:
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def agile_text(app_id: str, body: str, stamp: str) -> Any:
    params = {
        "originator": CUSTOMER,
        "destination": "+393331234333",
        "date_time": stamp,
        "text": body,
    }
    return Client().post(
        f"/api/sms/apps/{app_id}/receive",
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
    )


def rule(client: Any, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "rule")
    fields.setdefault("actions", [{"type": "reply", "text": "Got it"}])
    response = client.post("/api/v1/rules", fields, format="json")
    assert response.status_code == 201, response.json()
    return dict(response.json())


# --- MSync -----------------------------------------------------------------------------------


def test_msync_reply_is_handed_out_on_the_next_poll_through_the_same_sim(
    admin_client, phone, msync
):
    rule(
        admin_client,
        match={"keywords": ["YES"]},
        actions=[
            {"type": "reply", "text": "Confirmed, {{from}}"},
            {"type": "tag", "tag": "confirmed"},
        ],
    )

    msync.text("Yes please", sim_slot=2)

    [reply] = msync.poll()
    assert reply["to"] == CUSTOMER
    assert reply["message"] == f"Confirmed, {CUSTOMER}"
    assert reply["sim_slot"] == 2
    assert Message.objects.get(pk=reply["id"]).status == Status.DISPATCHED
    assert Conversation.objects.get(phone=CUSTOMER).tags == ["confirmed"]
    assert msync.poll() == []


def test_stop_over_msync_opts_out_confirms_once_and_blocks_api_sends(admin_client, msync):
    msync.text("STOP")
    msync.text("stop")

    confirmations = msync.poll()
    assert len(confirmations) == 1
    assert "unsubscribed" in confirmations[0]["message"]
    assert OptOut.objects.filter(phone=CUSTOMER, source="keyword").exists()

    refused = admin_client.post(
        "/api/v1/messages", {"to": CUSTOMER, "body": "Sale!"}, format="json"
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "recipient_opted_out"

    msync.text("START")
    assert "subscribed" in msync.poll()[0]["message"]
    allowed = admin_client.post(
        "/api/v1/messages", {"to": CUSTOMER, "body": "Sale!"}, format="json"
    )
    assert allowed.status_code == 202


def test_msync_forward_reaches_a_real_webhook_receiver(
    admin_client, msync, httpserver, settings, django_capture_on_commit_callbacks
):
    from webhooks.models import Delivery
    from webhooks.tasks import deliver_webhook

    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    httpserver.expect_request("/support", method="POST").respond_with_data("ok")
    rule(
        admin_client,
        name="Support intake",
        match={"keywords": ["SUPPORT"]},
        actions=[
            {"type": "forward", "url": httpserver.url_for("/support"), "format": "standard"},
            {"type": "tag", "tag": "support"},
        ],
    )

    with django_capture_on_commit_callbacks(execute=False):
        msync.text("support: my meter is broken")

    delivery = Delivery.objects.get()
    assert deliver_webhook(delivery.pk) == "succeeded"
    [(request, _)] = httpserver.log
    sent = json.loads(request.data)
    assert sent["type"] == "sms.received"
    assert sent["data"]["from"] == CUSTOMER
    assert sent["data"]["body"] == "support: my meter is broken"
    assert RuleHit.objects.get().actions[0]["status"] == "done"


def test_msync_forward_to_a_webhook_endpoint_creates_one_delivery(admin_client, msync, settings):
    from webhooks.models import Delivery

    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = admin_client.post(
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/crm", "format": "standard", "events": ["sms.received"]},
        format="json",
    ).json()
    rule(admin_client, actions=[{"type": "forward", "webhook_id": endpoint["id"]}])

    msync.text("hello")

    # Subscribed and forwarded: the endpoint still gets the message once.
    assert Delivery.objects.filter(endpoint_id=endpoint["id"]).count() == 1


def test_fifty_rules_add_at_most_two_queries_to_an_msync_inbound(admin_client, msync):
    def queries(body: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            msync.text(body)
        return len(ctx.captured_queries)

    msync.text("first contact")
    without_rules = queries("hello there")
    for i in range(50):
        rule(
            admin_client,
            name=f"r{i}",
            priority=i,
            match={"keywords": [f"code{i}"], "sender": "+1777*", "regex": rf"ref-{i}\b"},
        )

    cold = queries("hello there")
    warm = queries("hello there")

    print(f"msync inbound queries: no rules {without_rules}, 50 rules cold {cold}, warm {warm}")
    assert cold <= without_rules + 2
    assert warm <= without_rules + 2


def test_the_loop_guard_holds_over_msync(admin_client, msync):
    rule(admin_client, actions=[{"type": "reply", "text": "We will call you back"}])

    for i in range(7):
        msync.text(f"auto-reply {i}")

    assert len(msync.poll()) == 5
    assert RuleHit.objects.filter(suppressed=True).count() == 2


# --- SMSSync ---------------------------------------------------------------------------------


def test_smssync_gets_the_help_text_once_as_an_instant_reply(admin_client, phone):
    rule(admin_client, name="catch-all", actions=[{"type": "reply", "text": "Got it"}])

    payload = smssync_text(phone, "HELP", "m-1")

    assert payload["success"] is True
    [reply] = payload["messages"]
    assert reply["to"] == CUSTOMER
    assert "STOP" in reply["message"]
    assert Message.objects.get(uuid=reply["uuid"]).status == Status.DISPATCHED
    # The phone retries the same message: no second answer.
    assert "messages" not in smssync_text(phone, "HELP", "m-1")
    assert Message.objects.filter(direction="outbound").count() == 1


def test_smssync_stop_answers_with_the_confirmation_instantly(phone):
    payload = smssync_text(phone, "Stop!", "m-2")

    assert "unsubscribed" in payload["messages"][0]["message"]
    assert OptOut.objects.filter(phone=CUSTOMER).exists()
    assert "messages" not in smssync_text(phone, "STOP", "m-3")


# --- providers -------------------------------------------------------------------------------


def test_twilio_gets_the_reply_as_twiml(admin_client):
    app_id = create_app(
        admin_client,
        "twilio",
        {"account_sid": "AC" + "1" * 32, "auth_token": TWILIO_TOKEN},
        "+15557770001",
    )
    rule(
        admin_client,
        match={"keywords": ["YES"]},
        actions=[
            {"type": "reply", "text": "Confirmed <3 & thanks"},
            {"type": "tag", "tag": "confirmed"},
        ],
    )

    response = twilio_text(app_id, "yes", "SM" + "a" * 32)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert twiml_messages(response) == ["Confirmed <3 & thanks"]
    reply = Message.objects.get(direction="outbound")
    assert (reply.app_id, reply.to_number) == (app_id, CUSTOMER)
    assert Conversation.objects.get(phone=CUSTOMER).tags == ["confirmed"]


def test_twilio_stop_opts_out_with_one_twiml_confirmation(admin_client):
    app_id = create_app(
        admin_client,
        "twilio",
        {"account_sid": "AC" + "1" * 32, "auth_token": TWILIO_TOKEN},
        "+15557770001",
    )

    first = twiml_messages(twilio_text(app_id, "STOP", "SM" + "b" * 32))
    second = twiml_messages(twilio_text(app_id, "STOP", "SM" + "c" * 32))

    assert len(first) == 1 and "unsubscribed" in first[0]
    assert second == []
    assert OptOut.objects.filter(phone=CUSTOMER).exists()


def test_agile_telecom_stop_opts_out_and_a_phone_sends_the_confirmation(admin_client, phone):
    # An Agile app only receives: the confirmation goes out from a phone instead.
    app_id = create_app(admin_client, "agiletelecom", {}, "+393331234333")

    response = agile_text(app_id, "STOP", "20260514102301")

    assert response.content == b"+OK"
    assert OptOut.objects.filter(phone=CUSTOMER, source="keyword").exists()
    reply = Message.objects.get(direction="outbound")
    assert (reply.app_id, reply.device_id) == (None, phone.device.pk)
    assert "unsubscribed" in reply.body

    agile_text(app_id, "START", "20260514102302")
    assert not OptOut.objects.exists()
    assert (
        admin_client.post(
            "/api/v1/messages", {"to": CUSTOMER, "body": "hi"}, format="json"
        ).status_code
        == 202
    )


def test_without_a_phone_a_receive_only_app_writes_no_doomed_reply(admin_client):
    app_id = create_app(admin_client, "agiletelecom", {}, "+393331234333")

    assert agile_text(app_id, "STOP", "20260514102301").content == b"+OK"

    assert OptOut.objects.filter(phone=CUSTOMER, source="keyword").exists()
    assert not Message.objects.filter(direction="outbound").exists()
    hit = RuleHit.objects.get()
    assert "only receives" in json.dumps(hit.actions)


def test_two_auto_replying_phones_stop_answering_each_other(admin_client):
    """Two of our MSync phones text each other and both have an auto-reply: each poll's
    replies are typed into the other phone's incoming. The loop guard ends it."""
    from tests.factories import paired_device

    a, b = MSyncPhone(paired_device()), MSyncPhone(paired_device())
    number = {id(a): a.paired.device.sims.get().number, id(b): b.paired.device.sims.get().number}
    other = {id(a): b, id(b): a}
    rule(admin_client, actions=[{"type": "reply", "text": "Thanks! We answer within an hour."}])

    a.text("Hello from B", sender=number[id(b)])
    rounds, phone = 0, a
    while rounds < 50:
        handed_out = phone.poll()
        if not handed_out:
            break
        for sms in handed_out:
            other[id(phone)].text(sms["message"], sender=number[id(phone)])
        phone = other[id(phone)]
        rounds += 1

    assert rounds == 10  # five replies each way, then silence
    automated = Message.objects.filter(direction="outbound", source="automation")
    assert automated.filter(to_number=number[id(a)]).count() == 5
    assert automated.filter(to_number=number[id(b)]).count() == 5
    assert RuleHit.objects.filter(suppressed=True).count() == 1


def test_a_forward_to_a_deleted_webhook_fails_in_the_log_and_the_message_is_kept(
    admin_client, msync, settings
):
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = admin_client.post(
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/gone", "format": "standard"},
        format="json",
    ).json()
    rule(
        admin_client,
        actions=[{"type": "forward", "webhook_id": endpoint["id"]}, {"type": "tag", "tag": "kept"}],
    )
    assert admin_client.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 204

    msync.text("hello")

    inbound = Message.objects.get(direction="inbound")
    hits = admin_client.get(f"/api/v1/rules/hits?message_id={inbound.pk}").json()["results"]
    assert [a["status"] for a in hits[0]["actions"]] == ["failed", "done"]
    assert endpoint["id"] in hits[0]["actions"][0]["detail"]
    assert Conversation.objects.get(phone=CUSTOMER).tags == ["kept"]
