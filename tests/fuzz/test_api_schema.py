"""The OpenAPI document at /api/schema/ is the truth: schemathesis calls every operation with
generated input (valid and not), alone and chained through the links it infers (create, then
read, update, delete what was created), and every answer must be documented there: no 5xx,
a documented status code and content type, and a body that matches the documented schema
(including the error envelope for every 4xx)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from smsgate.openapi_doors import DOOR_TAGS
from smsgate.wsgi import application
from tests.fuzz.conftest import budget
from tests.fuzz.strategies import deep_json

pytestmark = pytest.mark.django_db

# The phone and provider doors (and /healthz, /metrics) are in the document too, but they do
# not take API keys and answer in their protocols' shapes; their own fuzzers
# (test_phones.py, test_providers.py) drive them with what real phones and providers send.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).exclude(
    tag=list(DOOR_TAGS)
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Schemathesis calls the WSGI application itself, whose request signals close the database
    connection after each request; that would drop the test's transaction (on PostgreSQL), so
    they are held off as Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# What "conforms to the document" means here. Not included: the checks that valid-looking data
# is accepted and invalid data refused, which need domain knowledge the schema cannot carry
# (a well-formed device id that does not exist is rightly a 404).
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@budget(25)
def test_every_operation_answers_as_documented(case: schemathesis.Case, admin_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, checks=CONFORMANCE)


def test_linked_operations_answer_as_documented(admin_key: str) -> None:
    """Stateful: objects created by one call are read, changed and deleted by the next, so the
    id-taking operations see real rows instead of only 404s; a deleted object stays gone and a
    created one can be read back."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        # Every scenario starts from the same database and empty throttle counters. Hypothesis
        # replays and mutates earlier scenarios; if rows (or request counts) from one leaked
        # into the next, the same choices would meet different answers, fill different link
        # bundles and fail as FlakyStrategyDefinition instead of testing anything.
        def setup(self) -> None:
            cache.clear()
            self._clean = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self._clean)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {admin_key}"}}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=[*CONFORMANCE, use_after_free, ensure_resource_availability],
                headers={"Authorization": f"Bearer {admin_key}"},
            )

    run_state_machine_as_test(Workflow, settings=budget(20, stateful_step_count=10))


# Schemathesis builds bodies from the documented schema, objects of typed fields a level or two
# deep, so it never sends the thousands of levels that exhaust Python's JSON parser. The phone
# and provider doors answer deep bodies in their own protocols' shapes: their fuzzers and
# tests/core/test_deep_json.py send them deep bodies.
_DOCUMENT = schema.raw_schema
JSON_BODY_OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in _DOCUMENT["paths"].items()
    for method, operation in item.items()
    if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    and not set(operation.get("tags", ())) & set(DOOR_TAGS)
)


@given(operation=st.sampled_from(JSON_BODY_OPERATIONS), body=deep_json())
@budget(40)
def test_every_operation_refuses_deeply_nested_json(
    operation: tuple[str, str], body: bytes, admin_key: str
) -> None:
    method, path = operation
    response = Client().generic(
        method,
        re.sub(r"\{[^}]+\}", "x", path),
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin_key}",
    )
    assert 400 <= response.status_code < 500, (operation, response.content[:200])
    payload = response.json()
    assert payload.get("error") or payload.get("success") is False, payload


def test_the_document_names_every_enum_and_the_error_envelope(anon_client: Any) -> None:
    document = anon_client.get("/api/schema/?format=json").json()
    components = document["components"]["schemas"]
    assert components["Error"]["required"] == ["error"]
    assert {"MessageStatusEnum", "RoleEnum"} <= set(components)
    # No name drf-spectacular had to invent after a collision ("Status5ecEnum": a hash suffix).
    assert not [n for n in components if re.search(r"[0-9a-f]{3}Enum$", n) and re.search(r"\d", n)]
    operations = [
        op
        for item in document["paths"].values()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
        and not set(op["tags"]) & set(DOOR_TAGS)  # protocol doors answer in their own shapes
    ]
    assert operations
    for operation in operations:
        assert {"400", "401", "403", "404", "429"} <= set(operation["responses"])
