"""A database outage is a 503 with Retry-After, never a 500: clients should simply retry."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from messaging.models import InboundRequest
from smsgate.auth import APIKeyAuthentication
from smsgate.middleware import DatabaseUnavailableMiddleware


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')


@pytest.mark.django_db
def test_an_api_request_during_an_outage_gets_503_with_retry_after(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(APIKeyAuthentication, "authenticate", refuse)
    response = admin_client.get("/api/v1/messages")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "unavailable",
            "message": "The database is unavailable; try again shortly.",
            "fields": {},
        }
    }


@pytest.mark.django_db
def test_a_phone_whose_request_cannot_be_logged_gets_503_so_it_sends_again() -> None:
    table = InboundRequest._meta.db_table

    def refuse_the_log(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # The database refuses the very statement that logs the request.
        if sql.startswith(f'INSERT INTO "{table}"'):
            refuse()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_the_log):
        response = Client().post(
            "/api/sms/smssync", {"from": "+254700000001", "message": "hi", "secret": "s"}
        )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"


def test_a_dashboard_page_during_an_outage_is_an_html_503() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    response = middleware.process_exception(
        RequestFactory().get("/inbox/"), InterfaceError("connection already closed")
    )
    assert response is not None
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"try again shortly" in response.content


def test_other_exceptions_are_left_to_the_500_handler() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/api/v1/messages")
    assert middleware.process_exception(request, ValueError("a real bug")) is None
