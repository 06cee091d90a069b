"""Settings for the test suite: the real settings, with only what tests must not share.

With CI=true the environment carries DATABASE_URL (PostgreSQL) and REDIS_URL (Redis), so the
suite runs on the real servers; without them it runs on SQLite and in-memory layers.
"""

from smsgate.channel_layer import redis_channel_layer_hosts
from smsgate.settings import *  # noqa: F403
from smsgate.settings import REDIS_URL

# Tests enqueue into an in-memory broker and call tasks directly; tests that need the real
# broker (worker processes, Redis restarts) build their own Celery connection to REDIS_URL.
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BROKER_TRANSPORT = None  # settings.py picks the Redis transport for a Redis URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Each xdist worker gets its own Redis database: tests clear the cache between cases (FLUSHDB)
# and some start real Celery workers on Redis, so workers sharing one database would wipe each
# other's cache entries and broker queues.
import os  # noqa: E402
import re  # noqa: E402

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _worker.startswith("gw"):
    _match = re.match(r"^(redis://[^/]+)(?:/(\d+))?(.*)$", REDIS_URL)
    if _match:
        _base_db = int(_match.group(2) or 0)
        _db = (_base_db + 1 + int(_worker[2:])) % 16
        REDIS_URL = f"{_match.group(1)}/{_db}{_match.group(3)}"
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "smsgate.cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "smsgate-test",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "smsgate.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": redis_channel_layer_hosts(REDIS_URL), "prefix": "smsgate-test"},
        }
    }
