"""Who may open what: login, the two roles, CSRF, and error pages in HTML or JSON by path."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

STAFF_PAGES = ["/", "/inbox/", "/broadcasts/", "/opt-outs/"]
ADMIN_PAGES = [
    "/logs/",
    "/keys/",
    "/users/",
    "/devices/",
    "/webhooks/",
    "/rules/",
    "/routing/",
]


@pytest.mark.parametrize("url", STAFF_PAGES + ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(anon_web: Client, url: str) -> None:
    response = anon_web.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_staff_open_the_staff_pages(staff_web: Client, url: str) -> None:
    response = staff_web.get(url)
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content  # the logout form at least


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_staff_get_a_403_page_on_admin_pages(staff_web: Client, url: str) -> None:
    response = staff_web.get(url)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"not allowed" in response.content


@pytest.mark.parametrize("url", STAFF_PAGES + ADMIN_PAGES)
def test_admins_open_every_page(admin_web: Client, url: str) -> None:
    assert admin_web.get(url).status_code == 200


def test_admin_links_are_only_in_an_admins_navigation(admin_web: Client, staff_web: Client) -> None:
    assert b'href="/keys/"' in admin_web.get("/inbox/").content
    assert b'href="/keys/"' not in staff_web.get("/inbox/").content


def test_the_login_form_logs_in_and_lands_on_the_inbox(staff_user: object) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/login/",
        {"username": "sam", "password": "correct horse battery", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"


def test_a_wrong_password_is_refused_with_a_message(staff_user: object) -> None:
    client = Client()
    response = client.post("/login/", {"username": "sam", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_a_post_without_csrf_token_is_refused(staff_web: Client) -> None:
    response = staff_web.post("/opt-outs/add/", {"phone": "+15551230000"})
    assert response.status_code == 403


def test_logout_needs_a_post_and_ends_the_session(staff_web: Client) -> None:
    staff_web.get("/inbox/")
    token = staff_web.cookies["csrftoken"].value
    response = staff_web.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert staff_web.get("/inbox/").status_code == 302


def test_unknown_dashboard_paths_get_an_html_404(staff_web: Client) -> None:
    response = staff_web.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("url", ["/api/v1/nothing-here", "/v1/nothing", "/metrics/nothing"])
def test_unknown_api_paths_keep_the_json_envelope(anon_web: Client, url: str) -> None:
    response = anon_web.get(url)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "There is nothing at this address.", "fields": {}}
    }


def test_error_handlers_answer_html_or_json_by_path() -> None:
    from django.test import RequestFactory

    from smsgate import errors

    rf = RequestFactory()
    for handler, status in ((errors.json_400, 400), (errors.json_403, 403)):
        page = handler(rf.get("/inbox/"))
        api = handler(rf.get("/api/v1/messages"))
        assert (page.status_code, api.status_code) == (status, status)
        assert page["Content-Type"].startswith("text/html")
        assert api["Content-Type"] == "application/json"
    page, api = errors.json_500(rf.get("/inbox/")), errors.json_500(rf.get("/healthz"))
    assert page.status_code == api.status_code == 500
    assert json.loads(api.content)["error"]["code"] == "server_error"
    assert b"Server error" in page.content
