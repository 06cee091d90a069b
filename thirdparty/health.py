"""`/health*` of the app's third-party API, open like smsgate's `/healthz` (docs/thirdparty.md#health)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from smsgate.views import _broker_ok, _database_ok


def _version() -> str:
    try:
        return version("smsgate")
    except PackageNotFoundError:
        return "dev"


def _answer(checks: dict[str, bool]) -> HttpResponse:
    ok = all(checks.values())
    body = {
        "status": "pass" if ok else "fail",
        "version": _version(),
        "releaseId": 0,
        "checks": {
            name: {"status": "pass" if passed else "fail", "description": f"{name} reachable"}
            for name, passed in checks.items()
        },
    }
    return JsonResponse(body, status=200 if ok else 503)


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    return _answer({"database": _database_ok(), "broker": _broker_ok()})


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    # Alive means the process answers; dependencies are readiness's business.
    return _answer({})


@require_GET
def ready(request: HttpRequest) -> HttpResponse:
    return _answer({"database": _database_ok(), "broker": _broker_ok()})


@require_GET
def startup(request: HttpRequest) -> HttpResponse:
    return _answer({"database": _database_ok()})
