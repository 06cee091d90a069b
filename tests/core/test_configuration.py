"""Every variable the settings read is documented in .env.example (docs/operations.md#configuration)."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def test_every_environment_variable_is_documented_in_env_example() -> None:
    source = (ROOT / "smsgate" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no variables found: the pattern no longer matches settings.py"
    assert read - documented == set()


def test_the_contract_variables_are_all_read() -> None:
    source = (ROOT / "smsgate" / "settings.py").read_text()
    for name in [
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "SMSGATE_PUBLIC_URL",
        "SMSGATE_DEFAULT_REGION",
        "SMSGATE_DEVICE_OFFLINE_AFTER",
        "SMSGATE_DISPATCH_TIMEOUT",
        "SMSGATE_AUTOREPLY_LIMIT",
        "SMSGATE_WEBHOOKS_ALLOW_PRIVATE",
        "EMAIL_URL",
    ]:
        assert f'"{name}"' in source, name
