"""`/api/v1/apps`: provider apps, admin only, credentials in but never out."""

from __future__ import annotations

import pytest

from messaging.models import ProviderApp
from providers.services import credentials_of

pytestmark = pytest.mark.django_db

VALID = {
    "twilio": {"account_sid": "AC7f1e2d3c4b5a69788796a5b4c3d2e1f0", "auth_token": "tok-secret-1"},
    "vonage": {
        "api_key": "a1b2c3d4",
        "api_secret": "api-secret-2",
        "signature_secret": "sig-secret-3",
        "signature_method": "sha256",
    },
    "africastalking": {"username": "acme", "api_key": "at-key-4", "token": "at-token-5"},
    "agiletelecom": {"username": "agile", "password": "agile-password-6"},
}
SECRETS = [
    "tok-secret-1",
    "api-secret-2",
    "sig-secret-3",
    "at-key-4",
    "at-token-5",
    "agile-password-6",
]


@pytest.mark.parametrize("provider", list(VALID))
def test_an_admin_creates_an_app_and_never_sees_its_credentials(admin_client, provider):
    response = admin_client.post(
        "/api/v1/apps",
        {
            "provider": provider,
            "name": "Main",
            "credentials": VALID[provider],
            "numbers": ["+254709000111"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("app_")
    assert body["provider"] == provider
    assert body["numbers"] == ["+254709000111"]
    assert body["receive_url"] == f"http://testserver/api/sms/apps/{body['id']}/receive"
    assert body["credential_keys"] == sorted(VALID[provider])
    assert "credentials" not in body
    for secret in SECRETS:
        assert secret not in response.content.decode()
    app = ProviderApp.objects.get(pk=body["id"])
    assert credentials_of(app) == VALID[provider]
    assert "secret" not in app.credentials_encrypted
    for url in ("/api/v1/apps", f"/api/v1/apps/{app.pk}"):
        text = admin_client.get(url).content.decode()
        assert all(secret not in text for secret in SECRETS)


def test_the_receive_url_uses_the_public_url(admin_client, settings):
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    response = admin_client.post(
        "/api/v1/apps",
        {"provider": "agiletelecom", "name": "A", "credentials": VALID["agiletelecom"]},
        format="json",
    )
    assert response.json()["receive_url"].startswith("https://sms.example.org/api/sms/apps/app_")


@pytest.mark.parametrize(
    ("provider", "credentials", "bad_key"),
    [
        ("twilio", {"account_sid": "AC1"}, "auth_token"),
        ("twilio", {"account_sid": "XX1", "auth_token": "t"}, "account_sid"),
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "authToken": "t"}, "authToken"),
        ("vonage", {"api_key": "k"}, "api_secret"),
        ("vonage", {**VALID["vonage"], "signature_method": "sha3"}, "signature_method"),
        ("africastalking", {"username": "u"}, "api_key"),
        ("agiletelecom", {"username": "u", "password": 5}, None),
        ("agiletelecom", {"username": "u", "password": {"x": 1}}, "password"),
    ],
)
def test_credentials_are_validated_per_provider(admin_client, provider, credentials, bad_key):
    response = admin_client.post(
        "/api/v1/apps",
        {"provider": provider, "name": "X", "credentials": credentials},
        format="json",
    )
    if bad_key is None:  # a number is accepted as its string
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert bad_key in str(error["fields"]["credentials"])
    assert not ProviderApp.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"provider": "sinch", "name": "X", "credentials": {}},
        {"provider": "twilio", "credentials": VALID["twilio"]},
        {"provider": "twilio", "name": "X", "credentials": "nope"},
        {"provider": "twilio", "name": "X", "credentials": VALID["twilio"], "numbers": ["12"]},
        {"provider": "twilio", "name": "X", "credentials": VALID["twilio"], "numbers": "+1555"},
    ],
)
def test_bad_payloads_are_400(admin_client, payload):
    response = admin_client.post("/api/v1/apps", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_numbers_are_normalised_and_short_codes_kept(admin_client):
    response = admin_client.post(
        "/api/v1/apps",
        {
            "provider": "africastalking",
            "name": "AT",
            "credentials": VALID["africastalking"],
            "numbers": ["+254 709 000111", "35555", "+254709000111"],
        },
        format="json",
    )
    assert response.json()["numbers"] == ["+254709000111", "35555"]


def test_staff_and_anonymous_callers_are_refused(staff_client, anon_client, bad_key_client):
    payload = {"provider": "twilio", "name": "X", "credentials": VALID["twilio"]}
    assert staff_client.post("/api/v1/apps", payload, format="json").status_code == 403
    assert staff_client.get("/api/v1/apps").status_code == 403
    assert anon_client.get("/api/v1/apps").status_code == 401
    assert bad_key_client.get("/api/v1/apps").status_code == 401


@pytest.fixture
def created(admin_client):
    response = admin_client.post(
        "/api/v1/apps",
        {"provider": "vonage", "name": "V", "credentials": VALID["vonage"]},
        format="json",
    )
    return response.json()


def test_an_update_merges_credentials_and_null_removes_an_optional_one(admin_client, created):
    response = admin_client.patch(
        f"/api/v1/apps/{created['id']}",
        {
            "name": "Renamed",
            "credentials": {
                "api_secret": "rotated",
                "signature_secret": None,
                "signature_method": None,
            },
            "enabled": False,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"
    assert response.json()["enabled"] is False
    assert response.json()["credential_keys"] == ["api_key", "api_secret"]
    app = ProviderApp.objects.get(pk=created["id"])
    assert credentials_of(app) == {"api_key": "a1b2c3d4", "api_secret": "rotated"}


def test_the_provider_cannot_be_changed(admin_client, created):
    response = admin_client.patch(
        f"/api/v1/apps/{created['id']}", {"provider": "twilio"}, format="json"
    )
    assert response.status_code == 400


def test_list_detail_and_delete(admin_client, created):
    listed = admin_client.get("/api/v1/apps").json()
    assert [a["id"] for a in listed["results"]] == [created["id"]]
    assert listed["next"] is None
    assert admin_client.get(f"/api/v1/apps/{created['id']}").json()["name"] == "V"
    assert admin_client.delete(f"/api/v1/apps/{created['id']}").status_code == 204
    assert admin_client.get(f"/api/v1/apps/{created['id']}").status_code == 404
    assert admin_client.delete(f"/api/v1/apps/{created['id']}").status_code == 404
    assert admin_client.patch("/api/v1/apps/app_nothere", {}, format="json").status_code == 404
