"""The Redis cache (smsgate/cache.py) keeps one client per pool and otherwise behaves as
Django's."""

from __future__ import annotations

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.redis


def test_every_call_reuses_one_client():
    backend = cache._cache
    assert backend.get_client() is backend.get_client(write=True)


def test_values_round_trip_and_a_zero_timeout_deletes():
    cache.set("smsgate-cache-test", {"history": [1.5, 2.5]}, 60)
    assert cache.get("smsgate-cache-test") == {"history": [1.5, 2.5]}

    cache.set("smsgate-cache-test", "gone", 0)
    assert cache.get("smsgate-cache-test") is None
