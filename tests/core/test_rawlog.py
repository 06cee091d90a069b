"""Even a request Django refuses to parse is kept in the raw inbound log."""

import pytest

from messaging.models import InboundRequest
from tests.factories import ProviderAppFactory

pytestmark = pytest.mark.django_db


def test_a_query_with_too_many_fields_is_logged_and_refused_without_a_5xx(client):
    app = ProviderAppFactory(provider="africastalking")
    query = "&".join(f"f{n}=v" for n in range(6000)) + "&token=hunter2"
    response = client.get(f"/api/sms/apps/{app.pk}/receive?{query}")
    assert 400 <= response.status_code < 500
    entry = InboundRequest.objects.get()
    assert entry.query.startswith("f0=v&f1=v")
    assert "hunter2" not in entry.query


def test_secrets_in_the_query_and_headers_are_removed(client):
    app = ProviderAppFactory(provider="africastalking")
    client.post(
        f"/api/sms/apps/{app.pk}/receive?token=hunter2",
        "from=%2B254722000333&text=hi",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION="Bearer abc",
    )
    entry = InboundRequest.objects.get()
    assert "token=[removed]" in entry.query
    assert entry.headers["Authorization"] == "Bearer [removed]"
