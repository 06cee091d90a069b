"""Broadcasts: paste or upload recipients, preview who is left out, send, watch progress."""

from __future__ import annotations

from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods

from dashboard import services
from dashboard.access import staff_required
from dashboard.models import Broadcast
from dashboard.views.common import render_page
from messaging.models import Status
from smsgate.errors import DomainError, InvalidInput

MAX_CSV_BYTES = 1024 * 1024

# Progress stages, in order: a message counts toward every stage it has reached.
_REACHED: dict[str, set[str]] = {
    "queued": {s.value for s in Status},
    "sent": {Status.SENT, Status.DELIVERED},
    "delivered": {Status.DELIVERED},
}
_FAILED: set[str] = {Status.FAILED, Status.CANCELLED, Status.EXPIRED}


def _entries(request: HttpRequest) -> list[str]:
    pasted = request.POST.get("recipients", "")
    upload = request.FILES.get("csv")
    csv_text = ""
    if upload is not None:
        if upload.size and upload.size > MAX_CSV_BYTES:
            raise InvalidInput("csv", "The CSV file is larger than 1 MB.")
        raw = upload.read(MAX_CSV_BYTES + 1)
        csv_text = raw.decode("utf-8-sig", errors="replace")
    return services.parse_recipients(pasted=pasted, csv_text=csv_text)


def _respects_quiet_hours(request: HttpRequest) -> bool:
    """On unless the form says otherwise. The form sends a hidden "0" before the checkbox's
    "1" (the last value wins), since an unticked checkbox sends nothing at all."""
    return request.POST.get("respect_quiet_hours", "1") != "0"


@staff_required
@require_http_methods(["GET", "POST"])
def broadcasts(request: HttpRequest) -> HttpResponse:
    """GET: the form and past broadcasts. POST: preview (default) or send (`confirm`)."""
    context: dict[str, object] = {"recent": Broadcast.objects.all()[:20], "respect_quiet": True}
    status = 200
    if request.method == "POST":
        body = request.POST.get("body", "")
        respect_quiet = _respects_quiet_hours(request)
        context.update(body=body, respect_quiet=respect_quiet)
        try:
            entries = _entries(request)
            if not entries:
                raise InvalidInput("recipients", "Paste at least one number or upload a CSV.")
            if request.POST.get("confirm"):
                broadcast = services.run_broadcast(
                    entries=entries,
                    body=body,
                    user=request.user,
                    respect_quiet_hours=respect_quiet,
                )
                return redirect("dashboard:broadcast", broadcast_id=broadcast.pk)
            context["plan"] = services.plan_broadcast(entries, respect_quiet_hours=respect_quiet)
            # Every entry (an uploaded file's too) goes back into the form, so sending plans
            # again from the same list and records who was left out.
            context["recipients_text"] = "\n".join(entries)
        except DomainError as exc:
            context["error"] = exc
            context["recipients_text"] = request.POST.get("recipients", "")
            status = exc.status_code
    return render_page(
        request, "dashboard/broadcasts.html", context, section="broadcasts", status=status
    )


def _progress(broadcast: Broadcast) -> dict[str, object]:
    counts: dict[str, int] = {
        str(status): int(n)
        for status, n in broadcast.messages.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    }
    total = sum(counts.values())

    def reached(stage: str) -> int:
        return sum(n for status, n in counts.items() if status in _REACHED[stage])

    failed = sum(n for status, n in counts.items() if status in _FAILED)
    done = reached("sent") + failed
    return {
        "total": total,
        "queued": reached("queued"),
        "sent": reached("sent"),
        "delivered": reached("delivered"),
        "failed": failed,
        "done": done,
        "percent": round(100 * done / total) if total else 100,
        "delivered_percent": round(100 * reached("delivered") / total) if total else 0,
        "by_status": counts,
    }


def _broadcast_or_404(broadcast_id: int) -> Broadcast:
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None:
        raise Http404
    return broadcast


@staff_required
@require_GET
def broadcast(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    item = _broadcast_or_404(broadcast_id)
    context = {"broadcast": item, "progress": _progress(item)}
    return render_page(request, "dashboard/broadcast.html", context, section="broadcasts")


@staff_required
@require_GET
def broadcast_progress(request: HttpRequest, broadcast_id: int) -> JsonResponse:
    return JsonResponse(_progress(_broadcast_or_404(broadcast_id)))
