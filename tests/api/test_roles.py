"""The role matrix of every integrator endpoint: admin key, staff key, no key, bad key.

Staff may send and read messages and conversations; the API keys API and /metrics are
admin-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from messaging.models import Message
from smsgate.models import APIKey
from smsgate.services import create_api_key
from tests.factories import ConversationFactory, OutboundMessageFactory, ProviderAppFactory

pytestmark = pytest.mark.django_db


@dataclass
class Call:
    method: str
    path: str  # may hold {message}, {conversation}, {key} or {app}
    body: dict | None
    admin: int
    staff: int


SEND = {"to": "+15551234567", "body": "hi"}

CALLS = [
    Call("get", "/api/v1/messages", None, 200, 200),
    Call("post", "/api/v1/messages", SEND, 202, 202),
    Call("get", "/api/v1/messages/{message}", None, 200, 200),
    Call("post", "/api/v1/messages/{message}/cancel", None, 200, 200),
    Call("get", "/api/v1/conversations", None, 200, 200),
    Call("get", "/api/v1/conversations/{conversation}/messages", None, 200, 200),
    Call("post", "/v1/sms/send", SEND, 202, 202),
    Call("post", "/api/v1/send", {"to": "+15551234567", "message": "hi"}, 200, 200),
    Call("get", "/api/v1/api-keys", None, 200, 403),
    Call("post", "/api/v1/api-keys", {"name": "ci"}, 201, 403),
    Call("delete", "/api/v1/api-keys/{key}", None, 200, 403),
    Call("get", "/metrics", None, 200, 403),
    # Provider apps (messaging/urls.py; their behaviour is tested in tests/providers).
    Call("get", "/api/v1/apps", None, 200, 403),
    Call("get", "/api/v1/apps/{app}", None, 200, 403),
    Call("patch", "/api/v1/apps/{app}", {"name": "renamed"}, 200, 403),
    Call("delete", "/api/v1/apps/{app}", None, 204, 403),
    # The routing policy (messaging/routing_views.py; tests/messaging/test_routing_policy_api.py).
    Call("get", "/api/v1/routing", None, 200, 403),
    Call("put", "/api/v1/routing", {"max_attempts": 2}, 200, 403),
]


def fill(path: str) -> str:
    conversation = ConversationFactory()
    message = OutboundMessageFactory(conversation=conversation)
    key = create_api_key(name="victim").api_key
    app = ProviderAppFactory()
    return path.format(message=message.pk, conversation=conversation.pk, key=key.pk, app=app.pk)


def call(client, c: Call, path: str | None = None):
    method: Callable = getattr(client, c.method)
    path = path or fill(c.path)
    return method(path, c.body, format="json") if c.body else method(path)


@pytest.mark.parametrize("c", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_admin_key(admin_client, c):
    assert call(admin_client, c).status_code == c.admin


@pytest.mark.parametrize("c", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_staff_key(staff_client, c):
    response = call(staff_client, c)
    assert response.status_code == c.staff
    if c.staff == 403:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("c", CALLS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize("persona", ["anon_client", "bad_key_client"])
def test_no_key_or_a_bad_key_is_401_and_changes_nothing(request, persona, c):
    client = request.getfixturevalue(persona)
    path = fill(c.path)
    messages_before = Message.objects.count()

    response = call(client, c, path)

    assert response.status_code == 401
    body = response.json()
    if c.path == "/api/v1/send":
        assert (body["success"], body["code"]) == (False, "not_authenticated")
    else:
        assert body["error"]["code"] == "not_authenticated"
    assert Message.objects.count() == messages_before
    assert not APIKey.objects.filter(revoked_at__isnull=False).exists()
    assert not Message.objects.filter(status="cancelled").exists()
