"""smsgate settings: everything comes from the environment (docs/operations.md#configuration).

The defaults need no server at all (SQLite under var/, an in-memory channel layer, a
filesystem Celery broker), so a fresh clone starts with one command. Setting DATABASE_URL and
REDIS_URL moves the same code onto PostgreSQL, a Redis broker, channels-redis and a Redis cache.
A bad value fails loudly at start-up rather than at the first request.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)
SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    # A per-checkout key kept under var/ so sessions and encrypted credentials survive restarts
    # without anyone having to invent a secret for the quick start.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "smsgate",
    "devices",
    "messaging",
    "automation",
    "webhooks",
    "phones",
    "providers",
    "thirdparty",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "smsgate.middleware.BodySizeLimitMiddleware",
    "smsgate.middleware.RejectNulMiddleware",
    "smsgate.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "smsgate.urls"
WSGI_APPLICATION = "smsgate.wsgi.application"
ASGI_APPLICATION = "smsgate.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'smsgate.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE transactions
    # take the write lock up front, so two writers queue instead of failing with "database is
    # locked" when a read transaction tries to upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
elif DATABASES["default"]["ENGINE"] in (
    "django.db.backends.postgresql",
    "django.db.backends.postgresql_psycopg2",
):
    DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement run 5 times on a connection is
        # prepared there: PostgreSQL then skips parsing and planning it. The hot statements
        # (an inbound SMS's dozen, a delivery batch's claim and record) cost PostgreSQL
        # 20-60 % less CPU (docs/performance.md). Turn it off behind a pooler in transaction
        # mode that cannot keep prepared statements (PgBouncer before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )
else:
    raise ImproperlyConfigured("DATABASE_URL must point at SQLite or PostgreSQL")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer and cache when configured ---------------------------------
REDIS_URL: str = env.str("REDIS_URL", default="")

if REDIS_URL:
    from smsgate.channel_layer import redis_channel_layer_hosts

    CACHES = {
        "default": {
            "BACKEND": "smsgate.cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "smsgate",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Retries reads and re-joins groups across Redis timeouts and restarts, so a live
            # inbox socket is not closed by them; the hosts' socket timeouts outlast the
            # layer's blocking pop (see smsgate/channel_layer.py).
            "BACKEND": "smsgate.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": redis_channel_layer_hosts(REDIS_URL), "prefix": "smsgate:ch"},
        }
    }
else:
    # Shared by the quick start's web, worker and beat processes (task start counters,
    # throttling) without a server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
# The filesystem broker has no host, but kombu warns ("No hostname was supplied") unless the
# URL names one.
CELERY_BROKER_URL: str = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server process: messages are files under var/broker, shared by the
    # web, worker and beat processes of the quick start.
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "processed").mkdir(exist_ok=True)
    (BROKER_DIR / "control").mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest countdown we ever schedule (webhook retries are capped at 10 h and
    # re-enqueued from the database by a beat sweep beyond that), so Redis never redelivers a
    # healthy message that is merely waiting for its ETA.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 12 * 3600}
CELERY_BROKER_TRANSPORT: str | None = None  # from the URL's scheme
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with a fix that keeps workers alive across a Redis restart.
    CELERY_BROKER_TRANSPORT = "smsgate.broker:Transport"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless
# this is set, so each webhook delivery paid for a new PostgreSQL session (a backend fork and
# its catalog warm-up: about 6 ms of server CPU, more than the delivery's own two statements).
# With it set that high the fixup never closes them; smsgate.celery closes them the way a
# request does instead (CONN_MAX_AGE, and any connection that errored or fails its check).
CELERY_DB_REUSE_MAX = 2**62
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic tasks are registered by each app in its AppConfig.ready() through
# smsgate.celery.register_periodic_task, so an app owns its own sweeps.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# --- auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# The server serves its own assets (API docs included) also with DEBUG=false and without
# collectstatic having been run: whitenoise finds them through the staticfiles finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Largest body any endpoint accepts (an MSync batch of 500 long UCS-2 messages fits); larger is
# a 413 from BodySizeLimitMiddleware.
SMSGATE_MAX_BODY_BYTES: int = env.int("SMSGATE_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = SMSGATE_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("SMSGATE_TRUST_PROXY", default=False) else None
)
USE_X_FORWARDED_HOST: bool = env.bool("SMSGATE_TRUST_PROXY", default=False)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="smsgate@localhost")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "smsgate.auth.APIKeyAuthentication",
        "smsgate.auth.DashboardSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["smsgate.auth.IsAdmin"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["smsgate.jsonbody.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "smsgate.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "smsgate.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "smsgate.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["smsgate.throttling.APIKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env.str("SMSGATE_API_RATE_LIMIT", default="1200/min"),
    },
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "smsgate API",
    "DESCRIPTION": "Send and receive SMS through your own phones and cloud numbers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Name the shared choice sets instead of letting drf-spectacular invent hashed names.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "messaging.models.Status",
        "RoleEnum": "smsgate.models.Role",
    },
    # Every operation documents the error envelope for the 4xx it can answer (smsgate/openapi.py)
    # and has a tag and a summary (openapi_tags.py). The phone and provider doors are added last
    # (openapi_doors.py): they answer in their protocols' shapes, not the API's envelope.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "smsgate.openapi_tags.add_tags_and_summaries",
        "smsgate.openapi.add_error_responses",
        "smsgate.openapi_doors.add_doors",
    ],
}

# --- smsgate --------------------------------------------------------------------------------
SMSGATE_PUBLIC_URL: str = env.str("SMSGATE_PUBLIC_URL", default="").rstrip("/")
SMSGATE_DEFAULT_REGION: str | None = env.str("SMSGATE_DEFAULT_REGION", default="") or None
SMSGATE_DEVICE_OFFLINE_AFTER: int = env.int("SMSGATE_DEVICE_OFFLINE_AFTER", default=300)
SMSGATE_DISPATCH_TIMEOUT: int = env.int("SMSGATE_DISPATCH_TIMEOUT", default=3600)
SMSGATE_AUTOREPLY_LIMIT: int = env.int("SMSGATE_AUTOREPLY_LIMIT", default=5)
# Built-in STOP/START/HELP handling (docs/automation.md#built-in-compliance-stop-start-help) and its texts; empty texts use the defaults
# in automation/engine.py.
SMSGATE_COMPLIANCE_ENABLED: bool = env.bool("SMSGATE_COMPLIANCE_ENABLED", default=True)
SMSGATE_OPTOUT_CONFIRMATION: str = env.str("SMSGATE_OPTOUT_CONFIRMATION", default="")
SMSGATE_OPTIN_CONFIRMATION: str = env.str("SMSGATE_OPTIN_CONFIRMATION", default="")
SMSGATE_HELP_TEXT: str = env.str("SMSGATE_HELP_TEXT", default="")
# Days the rule hit log is kept (0: forever).
SMSGATE_RULE_HIT_RETENTION_DAYS: int = env.int("SMSGATE_RULE_HIT_RETENTION_DAYS", default=90)
# Days webhook events (with their deliveries and attempts) are kept once none is pending, and
# days the raw inbound log is kept (0: forever). Messages themselves are never pruned.
SMSGATE_WEBHOOK_RETENTION_DAYS: int = env.int("SMSGATE_WEBHOOK_RETENTION_DAYS", default=30)
SMSGATE_RAW_LOG_RETENTION_DAYS: int = env.int("SMSGATE_RAW_LOG_RETENTION_DAYS", default=30)
SMSGATE_WEBHOOKS_ALLOW_PRIVATE: bool = env.bool("SMSGATE_WEBHOOKS_ALLOW_PRIVATE", default=False)
# Webhook request timeout in seconds (docs/webhooks.md#retries-and-automatic-disabling: 15 s; the `form` format always allows 30 s)
# and the delays between attempts (Svix's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
SMSGATE_WEBHOOKS_TIMEOUT: float = env.float("SMSGATE_WEBHOOKS_TIMEOUT", default=15.0)
SMSGATE_WEBHOOKS_RETRY_SCHEDULE: list[int] = env.list(
    "SMSGATE_WEBHOOKS_RETRY_SCHEDULE", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
# The beat sweep that re-publishes due deliveries whose broker message was lost (a flushed
# broker, a killed worker): how often it runs, and how long a published message may wait in
# the queue before the sweep treats it as lost (seconds). A worker killed mid-attempt resumes
# within timeout + 15 s lease margin + the interval.
SMSGATE_WEBHOOKS_SWEEP_INTERVAL: int = env.int("SMSGATE_WEBHOOKS_SWEEP_INTERVAL", default=10)
SMSGATE_WEBHOOKS_SWEEP_GRACE: int = env.int("SMSGATE_WEBHOOKS_SWEEP_GRACE", default=60)
# Batched delivery (docs/performance.md#webhook-delivery-in-batches): deliveries carried by one
# broker message, claimed and recorded together, and requests a worker process makes at once.
# As many threads as a batch has deliveries, so every request of a batch starts at once and a
# slow receiver never queues another's request behind its own.
SMSGATE_WEBHOOKS_BATCH_SIZE: int = env.int("SMSGATE_WEBHOOKS_BATCH_SIZE", default=50)
SMSGATE_WEBHOOKS_CONCURRENCY: int = env.int(
    "SMSGATE_WEBHOOKS_CONCURRENCY", default=SMSGATE_WEBHOOKS_BATCH_SIZE
)
if SMSGATE_WEBHOOKS_BATCH_SIZE < 1 or SMSGATE_WEBHOOKS_CONCURRENCY < 1:
    raise ImproperlyConfigured(
        "SMSGATE_WEBHOOKS_BATCH_SIZE and SMSGATE_WEBHOOKS_CONCURRENCY must be at least 1."
    )
SMSGATE_IDEMPOTENCY_TTL_HOURS: int = env.int("SMSGATE_IDEMPOTENCY_TTL_HOURS", default=48)
SMSGATE_METRICS_ALLOW: list[str] = env.list("SMSGATE_METRICS_ALLOW", default=[])
# The benchmark's baseline views (bench/views.py); never mounted unless the bench starts the server.
SMSGATE_BENCH_VIEWS: bool = env.bool("SMSGATE_BENCH_VIEWS", default=False)

# Cloud providers (providers/): API base URLs (overridable for tests and proxies) and attempts
# for temporary send failures. Routing (docs/routing.md): the defaults of the routing policy
# until an admin saves it — the fallback provider app (none while empty), how long a message
# may wait on a line that cannot send before it moves, and how many lines it may try.
SMSGATE_TWILIO_API_URL: str = env.str("SMSGATE_TWILIO_API_URL", default="https://api.twilio.com")
SMSGATE_VONAGE_API_URL: str = env.str("SMSGATE_VONAGE_API_URL", default="https://rest.nexmo.com")
SMSGATE_AFRICASTALKING_API_URL: str = env.str("SMSGATE_AFRICASTALKING_API_URL", default="")
SMSGATE_PROVIDER_MAX_ATTEMPTS: int = env.int("SMSGATE_PROVIDER_MAX_ATTEMPTS", default=6)
SMSGATE_VONAGE_SIGNATURE_MAX_AGE: int = env.int("SMSGATE_VONAGE_SIGNATURE_MAX_AGE", default=0)
SMSGATE_FALLBACK_APP_ID: str = env.str("SMSGATE_FALLBACK_APP_ID", default="")
SMSGATE_REROUTE_AFTER: int = env.int("SMSGATE_REROUTE_AFTER", default=120)
SMSGATE_MAX_ROUTE_ATTEMPTS: int = env.int("SMSGATE_MAX_ROUTE_ATTEMPTS", default=3)

if SMSGATE_DEFAULT_REGION:
    import phonenumbers

    if SMSGATE_DEFAULT_REGION.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(
            f"SMSGATE_DEFAULT_REGION={SMSGATE_DEFAULT_REGION!r} is not a known region code"
        )
    SMSGATE_DEFAULT_REGION = SMSGATE_DEFAULT_REGION.upper()

_CELERY_LOG_LEVEL = env.str("CELERY_LOG_LEVEL", default="WARNING").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Beat sends a sweep every few seconds and the worker logs receiving and finishing each
        # one: at INFO an idle platform prints lines forever. Failures are WARNING or ERROR and
        # still show; CELERY_LOG_LEVEL=INFO brings the per-task lines back.
        **{
            name: {"level": _CELERY_LOG_LEVEL}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
}
