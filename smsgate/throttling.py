"""The per-key request rate of the API (SMSGATE_API_RATE_LIMIT), as a sliding-window counter.

DRF's SimpleRateThrottle keeps every request's timestamp of the last period in one cache
entry, read and written whole on every request: a key sending at its default 1,200/min moved
a 10 KB list to and from Redis twice per request, and the bench's send phase (a limit it never
reaches) tens of KB. This keeps two integers per key instead, the count of the current fixed
window and of the one before, and estimates the requests of the last period as the current
count plus the previous one weighted by the part of it still inside the period (the
approximation Cloudflare and others use: within a fraction of a percent of an exact log for
steady traffic, and never more than the limit in any window). On Redis one script call (one round
trip) counts the request and reads both; a refused request is taken back, so retrying while
refused does not prolong the wait.

DRF answers 429 with `Retry-After` (`wait()`); the exception handler wraps it in the envelope.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from smsgate.auth import Principal

# INCR the current window's counter, renew its expiry, read the previous window's: one script
# call, which costs the client less than a pipeline of the three commands (its object, three
# packed commands and three replies), in the same one round trip.
_COUNT_LUA = """
local counted = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {counted, redis.call('GET', KEYS[2])}
"""
_script: Script | None = None


def _count_script(client: Any) -> Script:
    """The script, registered once per process (redis-py loads it again on a server that
    does not know it, after a restart)."""
    global _script
    if _script is None:
        _script = client.register_script(_COUNT_LUA)
    return _script


def _count(key: str, window: int, duration: int) -> tuple[int, int]:
    """Count one request in `window`; the counts of the previous window and of this one."""
    current_key, previous_key = f"{key}:{window}", f"{key}:{window - 1}"
    backend: Any = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        # make_key, not make_and_validate_key: Redis takes any key, and the memcached check
        # warned on every fuzzed client address.
        current = backend.make_key(current_key)
        previous = backend.make_key(previous_key)
        client = backend._cache.get_client(current, write=True)
        counted, before = _count_script(client)(
            keys=[current, previous], args=[2 * duration], client=client
        )
        return int(before or 0), int(counted)
    # Other caches (the file cache of a single machine, tests): the same through Django's API.
    cache.add(current_key, 0, timeout=2 * duration)
    try:
        counted = cache.incr(current_key)
    except ValueError:  # expired between add and incr
        cache.add(current_key, 1, timeout=2 * duration)
        counted = 1
    return int(cache.get(previous_key) or 0), int(counted)


def _uncount(key: str, window: int) -> None:
    try:
        cache.decr(f"{key}:{window}")
    except ValueError:  # already expired
        pass


class APIKeyRateThrottle(SimpleRateThrottle):
    """Per-key request rate (SMSGATE_API_RATE_LIMIT); anonymous callers are limited by address."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        # DRF copies the rates onto the class at import time; reading them per request lets a
        # changed REST_FRAMEWORK setting (tests, a reload) take effect.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return str(rate) if rate is not None else None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = request.user
        ident = principal.label if isinstance(principal, Principal) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        parsed: Any = self  # DRF sets these in __init__; its stubs do not declare them
        limit, duration = int(parsed.num_requests), int(parsed.duration)
        now = float(self.timer())
        window = int(now // duration)
        elapsed = now - window * duration
        previous, current = _count(key, window, duration)
        weight = 1 - elapsed / duration  # the share of the previous window still in the period
        if previous * weight + current <= limit:
            return True
        _uncount(key, window)
        self._wait = self._seconds_until_allowed(previous, current - 1, elapsed, duration, limit)
        return False

    @staticmethod
    def _seconds_until_allowed(
        previous: int, current: int, elapsed: float, duration: int, limit: int
    ) -> float:
        """When one more request would fit: the previous window's weight falls with time; if
        the current window alone is full, only the next window helps."""
        remaining = duration - elapsed
        room = limit - 1 - current
        if room < 0 or previous <= 0:
            return max(1.0, remaining)
        # previous * (1 - (elapsed + t) / duration) <= room
        t = duration * (1 - room / previous) - elapsed
        return max(1.0, min(remaining, t))

    def wait(self) -> float | None:
        wait = getattr(self, "_wait", None)
        return None if wait is None else float(math.ceil(wait))
