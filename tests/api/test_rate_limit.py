"""The per-key rate limit is a sliding-window counter: two small integers per key, whatever the
rate, with the previous window weighing in by the part of it still inside the period."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache

from smsgate.throttling import APIKeyRateThrottle

SEND = "/api/v1/messages"


def a_minute() -> float:
    """The start of a minute no other test uses: counters live in the shared cache (Redis in
    CI, with parallel test processes), so each test counts in windows of its own."""
    return 60.0 * random.randint(10**8, 10**9)


def set_rate(settings: Any, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": rate},
    }


def at(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(APIKeyRateThrottle, "timer", lambda self: seconds)


@pytest.fixture
def seconds_into_a_minute(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Sets the throttle's clock to that many seconds after the start of a fresh minute."""
    start = a_minute()
    return lambda offset: at(monkeypatch, start + offset)


def test_the_counters_stay_small_however_many_requests_were_made(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_rate(settings, "1000/min")
    now = a_minute() + 30  # halfway through a minute
    at(monkeypatch, now)
    key = f"throttle-test-{uuid.uuid4()}"
    monkeypatch.setattr(APIKeyRateThrottle, "get_cache_key", lambda self, request, view: key)
    for _ in range(50):
        assert APIKeyRateThrottle().allow_request(None, None)  # type: ignore[arg-type]
    # One integer for this minute (and, later, one for the minute before): not a list of
    # 50 timestamps, let alone 1,000.
    assert cache.get(f"{key}:{int(now // 60)}") == 50


@pytest.mark.django_db
def test_the_previous_window_counts_by_the_part_of_it_still_in_the_period(
    admin_client: Any, settings: Any, seconds_into_a_minute: Callable[[float], None]
) -> None:
    set_rate(settings, "4/min")
    seconds_into_a_minute(50)
    for _ in range(4):
        assert admin_client.get(SEND).status_code == 200
    assert admin_client.get(SEND).status_code == 429
    # 15 s into the next minute, three quarters of the previous one is still in the period:
    # 4 × 0.75 = 3 requests, so one more fits, and not two.
    seconds_into_a_minute(75)
    assert admin_client.get(SEND).status_code == 200
    response = admin_client.get(SEND)
    assert response.status_code == 429
    # It fits again once the previous window weighs under 3 - 1 = 2: at 30 s into the minute.
    assert int(response["Retry-After"]) == 15
    seconds_into_a_minute(91)
    assert admin_client.get(SEND).status_code == 200


@pytest.mark.django_db
def test_a_refused_request_is_not_counted(
    admin_client: Any, settings: Any, seconds_into_a_minute: Callable[[float], None]
) -> None:
    set_rate(settings, "2/min")
    seconds_into_a_minute(1)
    assert admin_client.get(SEND).status_code == 200
    assert admin_client.get(SEND).status_code == 200
    for _ in range(5):
        response = admin_client.get(SEND)
        assert response.status_code == 429
        assert int(response["Retry-After"]) == 59  # the rest of this window, not longer
    # The next window: the previous one's 2 (not 7) weigh in by 59/60, so one more fits
    # only once that falls under 1; at 31 s it is 2 × 29/60 < 1.
    seconds_into_a_minute(60 + 31)
    assert admin_client.get(SEND).status_code == 200


@pytest.mark.redis
def test_the_count_survives_a_redis_that_forgot_its_scripts(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One script call counts a request on Redis; a restarted Redis has no scripts loaded
    (here: a script this Redis never saw, as SCRIPT FLUSH would affect every client of the
    server), and the next count loads it again instead of failing."""
    from django.core.cache import caches

    from smsgate import throttling

    set_rate(settings, "1000/min")
    now = a_minute() + 30
    at(monkeypatch, now)
    key = f"throttle-test-{uuid.uuid4()}"
    monkeypatch.setattr(APIKeyRateThrottle, "get_cache_key", lambda self, request, view: key)
    assert APIKeyRateThrottle().allow_request(None, None)  # type: ignore[arg-type]
    backend: Any = caches["default"]
    client = backend._cache.get_client(write=True)
    assert throttling._script is not None
    monkeypatch.setattr(throttling._script, "sha", "0" * 40)
    assert APIKeyRateThrottle().allow_request(None, None)  # type: ignore[arg-type]
    counter = f"{key}:{int(now // 60)}"
    assert cache.get(counter) == 2
    assert 60 < client.ttl(backend.make_key(counter)) <= 120  # two windows, then it expires
