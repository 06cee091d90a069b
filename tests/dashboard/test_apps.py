"""The provider apps page: admins list, create, edit, disable and delete cloud number accounts;
credentials go in through the page and never come out of any page again."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from messaging.models import ProviderApp
from providers.services import create_provider_app, credentials_of
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db

TWILIO = {"account_sid": "AC7f1e2d3c4b5a69788796a5b4c3d2e1f0", "auth_token": "tok-secret-1"}
VONAGE = {"api_key": "a1b2c3d4", "api_secret": "api-secret-2", "signature_secret": "sig-secret-3"}
SECRETS = ["tok-secret-1", "api-secret-2", "sig-secret-3", "rotated-secret-4"]


def form(provider: str, credentials: dict[str, str], **fields: str) -> dict[str, str]:
    data = {"provider": provider, "name": "Main line", "numbers": "+254709000111", **fields}
    data.update({f"cred-{provider}-{key}": value for key, value in credentials.items()})
    return data


@pytest.fixture
def app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="twilio", name="Twilio KE", credentials=TWILIO, numbers=["+254709000111"]
    )


def pages(client: Client, app: ProviderApp) -> str:
    return client.get("/apps/").content.decode() + client.get(f"/apps/{app.pk}/").content.decode()


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/apps/", "/apps/{id}/"])
def test_staff_get_a_403_and_anonymous_visitors_the_login_page(
    staff_web: Client, anon_web: Client, app: ProviderApp, path: str
) -> None:
    url = path.format(id=app.pk)
    assert staff_web.get(url).status_code == 403
    assert anon_web.get(url).status_code == 302


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/apps/new/", form("twilio", TWILIO)),
        ("/apps/{id}/", {"name": "Renamed", "numbers": ""}),
        ("/apps/{id}/enabled/", {"enabled": "0"}),
        ("/apps/{id}/delete/", {}),
    ],
)
def test_staff_cannot_change_apps(
    staff_web: Client, app: ProviderApp, path: str, data: dict[str, str]
) -> None:
    assert csrf_post(staff_web, path.format(id=app.pk), data).status_code == 403
    assert ProviderApp.objects.get() == app
    assert ProviderApp.objects.get().name == "Twilio KE" and ProviderApp.objects.get().enabled


def test_writes_need_the_csrf_token(admin_web: Client, app: ProviderApp) -> None:
    assert admin_web.post(f"/apps/{app.pk}/delete/").status_code == 403
    assert ProviderApp.objects.filter(pk=app.pk).exists()


def test_admins_find_the_page_in_their_navigation(admin_web: Client, staff_web: Client) -> None:
    assert b'href="/apps/"' in admin_web.get("/inbox/").content
    assert b'href="/apps/"' not in staff_web.get("/inbox/").content


# --- the list ----------------------------------------------------------------------------------


def test_the_list_shows_each_app_with_its_public_receive_url(
    admin_web: Client, app: ProviderApp, settings: Any
) -> None:
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    html = admin_web.get("/apps/").content.decode()
    assert "Twilio KE" in html and "+254709000111" in html
    assert f"https://sms.example.org/api/sms/apps/{app.pk}/receive" in html
    assert f'data-copy="#receive-{app.pk}"' in html
    assert "account_sid, auth_token" in html
    assert "tok-secret-1" not in html


def test_without_a_public_url_the_receive_url_names_the_host_asked(
    admin_web: Client, app: ProviderApp
) -> None:
    html = admin_web.get("/apps/").content.decode()
    assert f"http://testserver/api/sms/apps/{app.pk}/receive" in html


def test_the_create_form_offers_each_providers_credential_fields(admin_web: Client) -> None:
    html = admin_web.get("/apps/").content.decode()
    for name in (
        "cred-twilio-account_sid",
        "cred-twilio-messaging_service_sid",
        "cred-vonage-signature_method",
        "cred-africastalking-token",
        "cred-agiletelecom-password",
    ):
        assert f'name="{name}"' in html


# --- create ------------------------------------------------------------------------------------


def test_an_admin_creates_an_app_and_its_secrets_never_appear_again(admin_web: Client) -> None:
    response = csrf_post(
        admin_web, "/apps/new/", form("vonage", VONAGE, numbers="+254709000111, +254709000112")
    )
    assert response.status_code == 302 and response["Location"] == "/apps/"
    app = ProviderApp.objects.get()
    assert (app.provider, app.name) == ("vonage", "Main line")
    assert app.numbers == ["+254709000111", "+254709000112"]
    assert credentials_of(app) == VONAGE
    html = admin_web.get("/apps/").content.decode() + pages(admin_web, app)
    assert "Credentials stored: api_key, api_secret, signature_secret" in html
    assert all(secret not in html for secret in SECRETS)


def test_empty_credential_fields_are_left_to_the_providers_validation(admin_web: Client) -> None:
    data = form("twilio", {"account_sid": TWILIO["account_sid"], "auth_token": ""})
    data["cred-twilio-messaging_service_sid"] = ""
    response = csrf_post(admin_web, "/apps/new/", data)
    assert response.status_code == 400
    assert "auth_token: This credential is required." in response.content.decode()
    assert not ProviderApp.objects.exists()


def test_a_refused_create_keeps_name_and_numbers_but_not_the_secrets(admin_web: Client) -> None:
    data = form("twilio", {**TWILIO, "account_sid": "XX1"}, numbers="+254709000111")
    response = csrf_post(admin_web, "/apps/new/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "account_sid" in html and 'value="Main line"' in html and "+254709000111" in html
    assert "tok-secret-1" not in html


def test_a_bad_number_is_refused_as_the_api_refuses_it(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/apps/new/", form("twilio", TWILIO, numbers="not-a-number"))
    assert response.status_code == 400
    assert b"numbers" in response.content
    assert not ProviderApp.objects.exists()


def test_an_unknown_provider_is_refused(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/apps/new/", form("smoke-signals", {}))
    assert response.status_code == 400
    assert b"provider" in response.content


# --- edit, disable, delete ----------------------------------------------------------------------


def test_an_admin_renames_an_app_and_changes_its_numbers(
    admin_web: Client, app: ProviderApp
) -> None:
    response = csrf_post(
        admin_web, f"/apps/{app.pk}/", {"name": "Twilio Kenya", "numbers": "+254709000222\n12345"}
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.name == "Twilio Kenya"
    assert app.numbers == ["+254709000222", "12345"]
    assert credentials_of(app) == TWILIO  # empty credential fields keep what is stored


def test_a_new_token_replaces_only_that_credential_and_is_not_shown(
    admin_web: Client, app: ProviderApp
) -> None:
    data = {
        "name": "Twilio KE",
        "numbers": "+254709000111",
        "cred-twilio-auth_token": "rotated-secret-4",
    }
    assert csrf_post(admin_web, f"/apps/{app.pk}/", data).status_code == 302
    app.refresh_from_db()
    assert credentials_of(app) == {**TWILIO, "auth_token": "rotated-secret-4"}
    assert all(secret not in pages(admin_web, app) for secret in SECRETS)


def test_a_refused_edit_says_why_and_changes_nothing(admin_web: Client, app: ProviderApp) -> None:
    response = csrf_post(admin_web, f"/apps/{app.pk}/", {"name": "", "numbers": "+1"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    app.refresh_from_db()
    assert app.name == "Twilio KE" and app.numbers == ["+254709000111"]


def test_an_admin_disables_and_enables_an_app(admin_web: Client, app: ProviderApp) -> None:
    assert csrf_post(admin_web, f"/apps/{app.pk}/enabled/", {"enabled": "0"}).status_code == 302
    app.refresh_from_db()
    assert not app.enabled
    assert "disabled" in admin_web.get("/apps/").content.decode()
    csrf_post(admin_web, f"/apps/{app.pk}/enabled/", {"enabled": "1"})
    app.refresh_from_db()
    assert app.enabled


def test_an_admin_deletes_an_app_after_confirming(admin_web: Client, app: ProviderApp) -> None:
    html = admin_web.get("/apps/").content.decode()
    assert f'action="/apps/{app.pk}/delete/" data-confirm="Delete' in html
    assert admin_web.get(f"/apps/{app.pk}/delete/").status_code == 405
    response = csrf_post(admin_web, f"/apps/{app.pk}/delete/")
    assert response.status_code == 302
    assert not ProviderApp.objects.exists()
    assert "deleted" in admin_web.get("/apps/").content.decode()


def test_an_unknown_app_is_a_message_not_an_error_page(admin_web: Client) -> None:
    assert admin_web.get("/apps/app_nope/").status_code == 302
    response = csrf_post(admin_web, "/apps/app_nope/delete/")
    assert response.status_code == 302
    assert "There is no provider app" in admin_web.get("/apps/").content.decode()


def test_an_africas_talking_app_with_a_token_says_to_add_it_to_the_url(
    admin_web: Client,
) -> None:
    create_provider_app(
        provider="africastalking",
        name="AT",
        credentials={"username": "acme", "api_key": "at-key", "token": "at-token-secret"},
    )
    html = admin_web.get("/apps/").content.decode()
    assert "Add <code>?token=</code>" in html
    assert "at-token-secret" not in html
