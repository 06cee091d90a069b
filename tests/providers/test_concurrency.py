"""Real concurrency on PostgreSQL: parts and retries arriving at the same moment."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client

from messaging.models import Message
from tests.providers.conftest import receive_path

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _post_all(path: str, bodies: list[dict[str, str]]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    codes: list[int] = []

    def run(params: dict[str, str]) -> None:
        try:
            barrier.wait()
            response = Client().post(
                path, urlencode(params), content_type="application/x-www-form-urlencoded"
            )
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def test_parts_arriving_together_make_exactly_one_message(unsigned_vonage_app):
    total = 6
    parts = [
        {
            "msisdn": "254722000333",
            "to": "254709000111",
            "messageId": f"C{n}",
            "text": f"[{n}]",
            "type": "text",
            "concat": "true",
            "concat-ref": "9",
            "concat-total": str(total),
            "concat-part": str(n),
        }
        for n in range(1, total + 1)
    ]
    codes = _post_all(receive_path(unsigned_vonage_app), parts)
    assert codes == [200] * total
    assert list(Message.objects.values_list("body", flat=True)) == ["[1][2][3][4][5][6]"]


def test_simultaneous_retries_are_stored_once(agile_app):
    body = {
        "originator": "+393351234567",
        "destination": "+393331234333",
        "date_time": "20260514102301",
        "text": "News ON",
    }
    codes = _post_all(receive_path(agile_app), [body] * 5)
    assert codes == [200] * 5
    assert Message.objects.count() == 1
