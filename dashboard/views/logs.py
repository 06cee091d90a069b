"""The raw inbound log (admin only): every request a phone or provider sent, as received."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from dashboard import queries
from dashboard.access import admin_required
from dashboard.views.common import paginate, query_without_page, render_page
from messaging.models import InboundRequest, ProviderApp
from smsgate import jsonbody

# Shown in the page; the rest of a large body is summarised rather than sent to the browser.
MAX_SHOWN_BODY = 64 * 1024
# A provider's receive URL names the app; refused requests may not be linked to it, so the
# name is looked up from the path.
APP_PATH = re.compile(r"^/api/sms/apps/(?P<app_id>[^/]+)/receive/?$")


def name_apps(entries: Iterable[InboundRequest]) -> None:
    """Set `app_name` on each entry whose path is a provider app's receive URL (one query for
    the whole page, whether or not the request was linked to the app)."""
    rows = list(entries)
    ids = {m["app_id"] for r in rows if (m := APP_PATH.match(r.path))}
    names = dict(ProviderApp.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    for r in rows:
        match = APP_PATH.match(r.path)
        r.app_name = names.get(match["app_id"], "") if match else ""  # type: ignore[attr-defined]


@admin_required
@require_GET
def log_list(request: HttpRequest) -> HttpResponse:
    source = request.GET.get("source", "")[:20]
    outcome = request.GET.get("outcome", "")[:10]
    page = paginate(request, queries.list_inbound_requests(source=source, outcome=outcome))
    name_apps(page.object_list)
    context = {
        "page": page,
        "source": source,
        "outcome": outcome,
        "sources": queries.INBOUND_SOURCES,
        "outcomes": InboundRequest.Outcome.choices,
        "querystring": query_without_page(request),
    }
    return render_page(request, "dashboard/logs.html", context, section="logs")


def decoded_body(raw: bytes | memoryview) -> tuple[str, bool]:
    """The body as text for display: invalid UTF-8 becomes U+FFFD and NULs are made visible
    (the template escapes HTML); True when it was cut to MAX_SHOWN_BODY."""
    data = bytes(raw)
    cut = len(data) > MAX_SHOWN_BODY
    text = data[:MAX_SHOWN_BODY].decode("utf-8", errors="replace").replace("\x00", "\\0")
    try:
        text = json.dumps(jsonbody.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    return text, cut


@admin_required
@require_GET
def log_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    entry = InboundRequest.objects.select_related("device", "app").filter(pk=request_id).first()
    if entry is None:
        raise Http404
    body, cut = decoded_body(entry.body)
    context = {"entry": entry, "body": body, "cut": cut, "size": len(bytes(entry.body))}
    return render_page(request, "dashboard/log_detail.html", context, section="logs")
