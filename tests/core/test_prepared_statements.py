"""On PostgreSQL the server binds the parameters and prepares the statements a connection runs
often, so the hot paths skip parsing and planning (DATABASE_PREPARED_STATEMENTS)."""

from __future__ import annotations

import pytest
from django.db import connection

from messaging.models import Conversation
from smsgate.rows import rows_where_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_five_times_is_prepared_on_the_server() -> None:
    Conversation.objects.create(phone="+254700000001")
    for _ in range(6):
        [found] = rows_where_in(Conversation, "phone", ["+254700000001"])
        assert found.phone == "+254700000001"
    assert any("messaging_conversation" in s for s in prepared_statements())


def test_parameters_are_bound_by_the_server() -> None:
    # A value that would be quoted into the text by client-side binding travels apart from it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text", ["it's"])
        assert cursor.fetchone() == ("it's",)
    assert connection.connection.prepare_threshold == 5
    assert "ClientCursor" not in type(connection.connection.cursor()).__mro__[0].__name__
