"""The routing policy (admin only, docs/routing.md#the-routing-policy): the fallback provider
app, re-routing and quiet hours, with the lines routing can use today, read-only.

The form is saved through `messaging.policy.update_policy`, the service `PUT /api/v1/routing`
calls, so the page accepts and refuses exactly what the API does; nothing is saved when any
field is refused."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from dashboard import queries
from dashboard.access import admin_required
from dashboard.views.common import render_page
from messaging.models import ProviderApp
from messaging.policy import MAX_ATTEMPTS, MAX_REROUTE_AFTER, Policy, current_policy, update_policy
from smsgate.errors import DomainError

# The service names quiet-hours problems by their JSON path; the form has one input for each.
_FIELD_OF = {"quiet_hours.start": "quiet_start", "quiet_hours.end": "quiet_end"}
# What the time inputs show while quiet hours are off, so switching them on needs no typing.
_QUIET_DEFAULT = {"quiet_start": "21:00", "quiet_end": "08:00"}


def _form_of(policy: Policy) -> dict[str, Any]:
    quiet = policy.quiet_hours.as_json() if policy.quiet_hours else None
    return {
        "fallback_app_id": policy.fallback_app_id or "",
        "reroute_after": str(policy.reroute_after),
        "max_attempts": str(policy.max_attempts),
        "quiet": quiet is not None,
        "quiet_start": quiet["start"] if quiet else _QUIET_DEFAULT["quiet_start"],
        "quiet_end": quiet["end"] if quiet else _QUIET_DEFAULT["quiet_end"],
    }


def _form_from(post: QueryDict) -> dict[str, Any]:
    return {
        "fallback_app_id": post.get("fallback_app_id", "").strip(),
        "reroute_after": post.get("reroute_after", "").strip(),
        "max_attempts": post.get("max_attempts", "").strip(),
        "quiet": post.get("quiet") == "on",
        "quiet_start": post.get("quiet_start", "").strip(),
        "quiet_end": post.get("quiet_end", "").strip(),
    }


def _whole(form: dict[str, Any], field: str, errors: dict[str, str]) -> int | None:
    try:
        return int(form[field])
    except ValueError:
        errors[field] = "Enter a whole number."
        return None


def _save(form: dict[str, Any], policy: Policy) -> dict[str, str]:
    """Save the form; the problems by form field (nothing is saved when there is one)."""
    errors: dict[str, str] = {}
    reroute_after = _whole(form, "reroute_after", errors)
    max_attempts = _whole(form, "max_attempts", errors)
    if errors:
        return errors
    changes: dict[str, Any] = {
        "reroute_after": reroute_after,
        "max_attempts": max_attempts,
        "quiet_hours": (
            {"start": form["quiet_start"], "end": form["quiet_end"]} if form["quiet"] else None
        ),
    }
    # A fallback left as it was is not checked again, as a PUT without it: an app that has
    # since lost its sending credentials must not block saving the other fields.
    if form["fallback_app_id"] != (policy.fallback_app_id or ""):
        changes["fallback_app_id"] = form["fallback_app_id"] or None
    try:
        update_policy(**changes)
    except DomainError as exc:
        return {
            _FIELD_OF.get(name, name): " ".join(map(str, problems))
            for name, problems in exc.fields.items()
        } or {"form": exc.message}
    return {}


def _fallback_choices(apps: list[ProviderApp], current_id: str) -> list[dict[str, str]]:
    """The apps that can send; plus the policy's current app when it no longer can (disabled,
    credentials removed), so saving the form does not drop it unnoticed."""
    choices = [
        {"id": app.pk, "label": f"{app.name} ({app.get_provider_display()})"} for app in apps
    ]
    if current_id and all(c["id"] != current_id for c in choices):
        app = ProviderApp.objects.filter(pk=current_id).first()
        why = "missing" if app is None else "disabled" if not app.enabled else "cannot send"
        name = app.name if app is not None else current_id
        choices.append({"id": current_id, "label": f"{name} ({why}: not used)"})
    return choices


def _render(
    request: HttpRequest, policy: Policy, form: dict[str, Any], errors: dict[str, str]
) -> HttpResponse:
    apps = queries.list_sending_apps()
    context = {
        "policy": policy,
        "form": form,
        "errors": errors,
        "choices": _fallback_choices(apps, policy.fallback_app_id or ""),
        "phone_lines": queries.list_phone_lines(),
        "apps": apps,
        "max_reroute_after": MAX_REROUTE_AFTER,
        "max_attempts": MAX_ATTEMPTS,
    }
    status = 400 if errors else 200
    return render_page(request, "dashboard/routing.html", context, section="routing", status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def routing(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        policy = current_policy()
        form = _form_from(request.POST)
        errors = _save(form, policy)
        if errors:
            return _render(request, policy, form, errors)
        messages.success(request, "Routing policy saved.")
        return redirect("dashboard:routing")
    policy = current_policy()
    return _render(request, policy, _form_of(policy), {})
