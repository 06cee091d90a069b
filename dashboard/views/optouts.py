"""The suppression list, through messaging.optouts (the one place that changes it)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import is_admin, staff_required
from dashboard.views.common import paginate, query_without_page, render_page
from messaging import optouts
from messaging.models import OptOut
from smsgate.errors import DomainError


def _render(
    request: HttpRequest, *, error: DomainError | None = None, phone: str = ""
) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:40]
    qs = OptOut.objects.order_by("-at", "phone")
    if search:
        qs = qs.filter(phone__icontains=search)
    context = {
        "page": paginate(request, qs),
        "search": search,
        "error": error,
        "phone": phone,
        "querystring": query_without_page(request),
    }
    status = error.status_code if error else 200
    return render_page(request, "dashboard/optouts.html", context, section="optouts", status=status)


@staff_required
@require_GET
def optout_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@staff_required
@require_POST
def optout_add(request: HttpRequest) -> HttpResponse:
    phone = request.POST.get("phone", "")
    try:
        result = optouts.opt_out(phone, source="dashboard")
    except DomainError as exc:
        return _render(request, error=exc, phone=phone)
    if result.created:
        note = f"{result.opt_out.phone} will get no more messages."
        if result.cancelled:
            note += f" {result.cancelled} queued message(s) to it were cancelled."
        messages.success(request, note)
    else:
        messages.info(request, f"{result.opt_out.phone} was already opted out.")
    return redirect("dashboard:optouts")


@staff_required
@require_POST
def optout_remove(request: HttpRequest) -> HttpResponse:
    # Taking a number off the list lets messages reach someone who asked for none: admins only.
    if not is_admin(request.user):
        raise PermissionDenied
    phone = request.POST.get("phone", "")
    try:
        optouts.remove_opt_out(phone)
    except DomainError as exc:
        return _render(request, error=exc)
    messages.success(request, f"{phone} can receive messages again.")
    return redirect("dashboard:optouts")
