"""What a new admin could not read or find: the app a logged request was for, which message a
webhook delivery was about (in a compact table), tags, opt-outs before typing, the API docs,
who is signed in, and the favicon."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import Conversation, InboundRequest, Message
from tests.factories import (
    ConversationFactory,
    InboundMessageFactory,
    OptOutFactory,
    ProviderAppFactory,
)
from webhooks.models import Attempt, Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db


# --- /logs/ ---------------------------------------------------------------------------------


def _refused_app_requests(count: int) -> list[Any]:
    apps = [ProviderAppFactory(name=f"Clinic reminders {n}") for n in range(count)]
    for app in apps:
        # Refused before the app was looked up: the row is not linked to the app.
        InboundRequest.objects.create(
            source="twilio",
            method="POST",
            path=f"/api/sms/apps/{app.pk}/receive",
            outcome="rejected",
            status_code=403,
            detail="bad signature",
        )
    return apps


def test_the_log_names_the_provider_app_of_a_refused_request(admin_web: Client) -> None:
    [app] = _refused_app_requests(1)
    html = admin_web.get("/logs/").content.decode()
    assert "Clinic reminders 0" in html
    assert f"/api/sms/apps/{app.pk}/receive" in html  # the whole path, not cut at 40


def test_the_log_names_apps_without_a_query_per_row(
    admin_web: Client, django_assert_max_num_queries: Any
) -> None:
    _refused_app_requests(25)
    admin_web.get("/logs/")  # session and user warm-up
    with django_assert_max_num_queries(8):
        html = admin_web.get("/logs/").content.decode()
    assert html.count("data-app-name") == 25


# --- the webhook endpoint page ---------------------------------------------------------------


def _deliveries(endpoint: Endpoint, count: int) -> list[Delivery]:
    deliveries = []
    for n in range(count):
        message = InboundMessageFactory(from_number=f"+1555010{n:04d}", body=f"Order {n} ready?")
        event = Event.objects.create(
            type="sms.received",
            message=message,
            data={"messageId": message.pk, "from": message.from_number, "body": message.body},
        )
        status = "succeeded" if n % 2 == 0 else "failed"
        delivery = Delivery.objects.create(
            event=event, endpoint=endpoint, status=status, attempts_made=1
        )
        Attempt.objects.create(
            delivery=delivery,
            at=timezone.now() - timedelta(minutes=n),
            status_code=200 if status == "succeeded" else 503,
            succeeded=status == "succeeded",
            error="" if status == "succeeded" else "HTTP 503",
            response_excerpt="ok" if status == "succeeded" else "down for maintenance",
        )
        deliveries.append(delivery)
    return deliveries


def _row(html: str, delivery: Delivery) -> str:
    match = re.search(
        rf'<tr class="delivery" id="delivery-{delivery.pk}">(.*?)\n  </tr>', html, re.S
    )
    assert match, delivery.pk
    return match.group(1)


def test_deliveries_are_a_compact_table_saying_which_message_they_were_about(
    admin_web: Client,
) -> None:
    endpoint = Endpoint.objects.create(url="https://crm.example.org/hook", events=["sms.received"])
    succeeded, failed = _deliveries(endpoint, 2)
    html = admin_web.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "deliveries-table" in html and 'class="card delivery"' not in html
    row = _row(html, failed)
    assert "+15550100001" in row and "Order 1 ready?" in row
    assert "<details>" in row and "down for maintenance" in row
    assert "Retry now" in row
    assert "Retry now" not in _row(html, succeeded)


def test_the_delivery_table_takes_a_bounded_number_of_queries(
    admin_web: Client, django_assert_max_num_queries: Any
) -> None:
    endpoint = Endpoint.objects.create(url="https://crm.example.org/hook", events=["sms.received"])
    _deliveries(endpoint, 25)
    admin_web.get(f"/webhooks/{endpoint.pk}/")
    with django_assert_max_num_queries(10):
        html = admin_web.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert html.count('class="delivery"') == 25


# --- inbox, thread and header ----------------------------------------------------------------


def test_tags_show_on_inbox_rows_and_in_the_thread(admin_web: Client) -> None:
    message = InboundMessageFactory(from_number="+15550109999")
    conversation = ConversationFactory(phone="+15550109999", tags=["vip", "wholesale"])
    Message.objects.filter(pk=message.pk).update(conversation=conversation)
    Conversation.objects.filter(pk=conversation.pk).update(last_message=message)
    inbox = admin_web.get("/inbox/").content.decode()
    thread = admin_web.get(f"/inbox/{conversation.pk}/").content.decode()
    for html in (inbox, thread):
        assert '<span class="tag">vip</span>' in html
        assert '<span class="tag">wholesale</span>' in html


def test_an_opted_out_contact_s_thread_says_so_before_typing(admin_web: Client) -> None:
    conversation = ConversationFactory(phone="+15550108888")
    OptOutFactory(phone="+15550108888")
    html = admin_web.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "has opted out" in html
    notice, box = html.index("data-opted-out"), html.index('<textarea id="body"')
    assert notice < box
    assert "<fieldset disabled" in html[notice:box]


def test_a_contact_who_did_not_opt_out_has_an_open_send_box(admin_web: Client) -> None:
    conversation = ConversationFactory(phone="+15550107777")
    html = admin_web.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "data-opted-out" not in html and "<fieldset disabled" not in html


def test_the_header_links_the_api_docs_and_says_who_is_signed_in(
    admin_web: Client, staff_web: Client
) -> None:
    admin = admin_web.get("/inbox/").content.decode()
    assert 'href="/api/docs/"' in admin
    assert "Signed in as <strong>ada</strong> (Admin)" in admin
    assert "Signed in as <strong>sam</strong> (Staff)" in staff_web.get("/inbox/").content.decode()


def test_the_favicon_is_linked_and_served(admin_web: Client, anon_web: Client) -> None:
    html = admin_web.get("/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/dashboard/favicon\.svg"', html)
    response = anon_web.get("/favicon.ico")
    assert response.status_code in (301, 302)
    assert response["Location"] == "/static/dashboard/favicon.svg"
