"""Agile Telecom's inbound webhook (seeds/003): form POST, `+OK` and nothing else."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging.models import InboundRequest, Message
from tests.providers.conftest import post_form, receive_path

pytestmark = pytest.mark.django_db

INBOUND = {
    "originator": "+393351234567",
    "destination": "+393331234333",
    "date_time": "20260514102301",
    "text": "News ON",
}


def test_a_message_is_stored_and_answered_with_exactly_plus_ok(agile_app):
    response = post_form(Client(), receive_path(agile_app), INBOUND)
    assert response.status_code == 200
    assert response.content == b"+OK"
    message = Message.objects.get()
    assert (message.from_number, message.to_number) == ("+393351234567", "+393331234333")
    assert message.body == "News ON"
    assert message.received_at.isoformat() == "2026-05-14T10:23:01+00:00"
    assert message.source == "agiletelecom"


def test_a_retried_duplicate_gets_plus_ok_and_is_stored_once(agile_app):
    for _ in range(3):
        response = post_form(Client(), receive_path(agile_app), INBOUND)
        assert response.content == b"+OK"
    assert Message.objects.count() == 1
    outcomes = list(InboundRequest.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["accepted", "duplicate", "duplicate"]


@pytest.mark.parametrize(
    "change",
    [{"text": "News OFF"}, {"date_time": "20260514102302"}, {"originator": "+393351234568"}],
)
def test_a_different_message_is_not_a_duplicate(agile_app, change):
    post_form(Client(), receive_path(agile_app), INBOUND)
    assert post_form(Client(), receive_path(agile_app), {**INBOUND, **change}).content == b"+OK"
    assert Message.objects.count() == 2


def test_a_destination_without_plus_is_matched(agile_app):
    params = {**INBOUND, "destination": "393331234333"}
    assert post_form(Client(), receive_path(agile_app), params).content == b"+OK"


def test_a_destination_that_is_not_ours_is_refused(agile_app):
    params = {**INBOUND, "destination": "+393330000000"}
    response = post_form(Client(), receive_path(agile_app), params)
    assert response.status_code == 403
    assert response.content != b"+OK"
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        {k: v for k, v in INBOUND.items() if k != "text"},
        {k: v for k, v in INBOUND.items() if k != "originator"},
        {**INBOUND, "date_time": "2026-05-14 10:23:01"},
        {**INBOUND, "date_time": "20261314102301"},
        {**INBOUND, "date_time": ""},
        {**INBOUND, "originator": "  "},
    ],
)
def test_a_malformed_post_is_a_400_without_plus_ok(agile_app, params):
    response = post_form(Client(), receive_path(agile_app), params)
    assert response.status_code == 400
    assert response.content.startswith(b"-ERR")
    assert not Message.objects.exists()
