"""/api/docs/ reads by area: every operation has a tag and a summary, and the phone and
provider doors are documented with how each authenticates."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from providers.services import create_provider_app
from tests.factories import paired_device

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


def _document(client: Any) -> dict[str, Any]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_has_a_summary_and_a_declared_tag(anon_client: Any) -> None:
    document = _document(anon_client)
    declared = {tag["name"] for tag in document["tags"]}
    assert all(tag.get("description") for tag in document["tags"])
    problems = []
    for method, path, operation in _operations(document):
        if not str(operation.get("summary", "")).strip():
            problems.append(f"{method.upper()} {path}: no summary")
        tags = operation.get("tags") or []
        if not tags:
            problems.append(f"{method.upper()} {path}: no tag")
        if set(tags) - declared:
            problems.append(f"{method.upper()} {path}: undeclared tag {tags}")
    assert not problems, "\n".join(problems)


def test_operations_are_grouped_by_area_not_in_one_list(anon_client: Any) -> None:
    document = _document(anon_client)
    by_path = {
        (method, path): operation["tags"] for method, path, operation in _operations(document)
    }
    assert by_path[("post", "/api/v1/messages")] == ["messages"]
    assert by_path[("get", "/api/v1/conversations")] == ["conversations"]
    assert by_path[("post", "/api/v1/apps")] == ["provider apps"]
    assert by_path[("post", "/api/v1/webhooks/{id}/test")] == ["webhooks"]
    assert by_path[("post", "/api/v1/rules/test")] == ["rules"]
    assert by_path[("delete", "/api/v1/opt-outs/{phone}")] == ["opt-outs"]
    assert by_path[("get", "/api/v1/api-keys")] == ["API keys"]
    assert by_path[("post", "/api/v1/devices")] == ["devices"]
    assert by_path[("get", "/healthz")] == ["health"]
    assert len({tag for tags in by_path.values() for tag in tags}) >= 10


def test_the_phone_doors_are_documented_with_their_auth(anon_client: Any) -> None:
    document = _document(anon_client)
    schemes = document["components"]["securitySchemes"]
    smssync = document["paths"]["/api/sms/smssync"]
    for method in ("get", "post"):
        assert smssync[method]["tags"] == ["phones"]
        assert {"smssyncSecret": []} in smssync[method]["security"]
        assert {"smssyncBasic": []} in smssync[method]["security"]
    assert schemes["smssyncSecret"] == {**schemes["smssyncSecret"], "in": "query", "name": "secret"}
    assert schemes["smssyncBasic"]["scheme"] == "basic"
    assert smssync["post"]["responses"]["200"]["content"]["application/json"]["example"] == {
        "payload": {"success": True, "error": None}
    }
    form = smssync["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert {"from", "message", "secret", "message_id"} <= set(form["example"])

    msync = document["paths"]["/api/sms/msync"]["post"]
    assert msync["security"] == [{"msyncDeviceToken": []}]
    assert schemes["msyncDeviceToken"]["scheme"] == "bearer"
    examples = msync["requestBody"]["content"]["application/json"]["examples"]
    assert examples["incoming"]["value"]["action"] == "incoming"
    assert {"200", "400", "401", "403"} <= set(msync["responses"])


def test_the_provider_receive_url_is_documented_with_each_providers_check(
    anon_client: Any,
) -> None:
    document = _document(anon_client)
    schemes = document["components"]["securitySchemes"]
    receive = document["paths"]["/api/sms/apps/{app_id}/receive"]["post"]
    assert receive["tags"] == ["providers"]
    assert schemes["twilioSignature"] == {
        **schemes["twilioSignature"],
        "in": "header",
        "name": "X-Twilio-Signature",
    }
    assert (schemes["vonageSignature"]["in"], schemes["vonageSignature"]["name"]) == (
        "query",
        "sig",
    )
    assert schemes["africastalkingToken"]["name"] == "token"
    for scheme in ("twilioSignature", "vonageSignature", "africastalkingToken"):
        assert {scheme: []} in receive["security"]
    assert {} in receive["security"]  # Agile Telecom signs nothing: its destination is checked
    assert "destination" in receive["description"]
    form = receive["requestBody"]["content"]["application/x-www-form-urlencoded"]["examples"]
    assert {"twilio", "africastalking", "agiletelecom"} <= set(form)
    assert receive["responses"]["200"]["content"]["text/plain"]["example"] == "+OK"


def test_the_documented_door_examples_are_what_the_doors_accept(anon_client: Any) -> None:
    document = _document(anon_client)
    paired = paired_device(sims=1)
    msync = document["paths"]["/api/sms/msync"]["post"]
    example = msync["requestBody"]["content"]["application/json"]["examples"]["incoming"]["value"]
    response = Client().post(
        "/api/sms/msync",
        json.dumps({**example, "device_id": paired.device.pk}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {paired.token}",
    )
    assert response.status_code == 200
    assert response.json() == msync["responses"]["200"]["content"]["application/json"]["example"]

    smssync = document["paths"]["/api/sms/smssync"]["post"]
    form = smssync["requestBody"]["content"]["application/x-www-form-urlencoded"]["example"]
    response = Client().post(
        "/api/sms/smssync",
        urlencode({**form, "secret": paired.secret}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == smssync["responses"]["200"]["content"]["application/json"]["example"]

    receive = document["paths"]["/api/sms/apps/{app_id}/receive"]["post"]
    content = receive["requestBody"]["content"]["application/x-www-form-urlencoded"]
    app = create_provider_app(
        provider="agiletelecom",
        name="Agile IT",
        credentials={"username": "agile", "password": "pw"},
        numbers=["+393400000001"],
    )
    response = Client().post(
        f"/api/sms/apps/{app.pk}/receive",
        urlencode(content["examples"]["agiletelecom"]["value"]),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert response.content.decode().strip() == "+OK"
