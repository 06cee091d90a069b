"""Django's Redis cache backend, with one Redis client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and redis-py's
constructor fills a table of some 170 response callbacks each time: for the per-key rate
limit (a get and a set on every API request) that cost more CPU than both round trips. A
client holds nothing but its pool and that table and is safe to share between threads, so one
per pool serves every call. Everything else (pools, serialization, keys) is Django's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Pools live as long as this object, so their ids stay theirs.
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django: Any = self  # the parts of Django's client its type stubs leave out
        pool = django._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), django._client(connection_pool=pool))
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
