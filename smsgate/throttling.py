from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from smsgate.auth import Principal


class APIKeyRateThrottle(SimpleRateThrottle):
    """Per-key request rate (SMSGATE_API_RATE_LIMIT); anonymous callers are limited by address.

    DRF answers 429 with `Retry-After`; the exception handler wraps it in the error envelope.
    """

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
