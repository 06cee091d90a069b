"""Rules (admin only): the ordered list with up/down reordering, an editor for conditions and
actions, a dry-run box and the hit log. Everything goes through automation.services."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from automation import services as automation
from automation.models import Rule, RuleHit
from dashboard import queries
from dashboard.access import admin_required
from dashboard.views.common import render_page
from smsgate.errors import DomainError
from webhooks.models import Endpoint

ACTION_ROWS = 3
# More rows than a rule may have actions are ignored rather than looped over.
MAX_ACTION_ROWS = 25
ACTION_TYPES = (
    ("reply", "Reply with text"),
    ("forward", "Forward to a webhook"),
    ("opt_out", "Opt the sender out"),
    ("opt_in", "Opt the sender in"),
    ("tag", "Tag the conversation"),
)
HIT_LOG_SIZE = 50


def _rules() -> list[Rule]:
    return list(Rule.objects.order_by("priority", "created_at", "id"))


def _render_list(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "rules": _rules(),
        "hits": RuleHit.objects.select_related("rule").order_by("-id")[:HIT_LOG_SIZE],
        "devices": queries.devices_for_filter(),
        **extra,
    }
    return render_page(request, "dashboard/rules.html", context, section="rules", status=status)


@admin_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@admin_required
@require_POST
def rule_dry_run(request: HttpRequest) -> HttpResponse:
    trial: dict[str, Any] = {
        "phone": request.POST.get("from", "").strip(),
        "body": request.POST.get("body", ""),
        "device_id": request.POST.get("device_id", "") or None,
    }
    try:
        result = automation.dry_run(**trial)
    except DomainError as exc:
        return _render_list(request, exc.status_code, dry_error=exc, trial=trial)
    return _render_list(request, dry_run=result, trial=trial)


@admin_required
@require_POST
def rule_move(request: HttpRequest, rule_id: str) -> HttpResponse:
    """Swap a rule with its neighbour (buttons work from the keyboard and without JS)."""
    order = [r.pk for r in _rules()]
    if rule_id in order:
        i = order.index(rule_id)
        j = i - 1 if request.POST.get("direction") == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            automation.reorder_rules(order=order)
    return redirect("dashboard:rules")


def _split_keywords(raw: str) -> list[str]:
    return [k for k in re.split(r"[,\s]+", raw) if k]


def _rule_from_form(post: Any) -> dict[str, Any]:
    """The editor's fields as the rule shape automation.services validates."""
    match: dict[str, Any] = {}
    keywords = _split_keywords(post.get("keywords", ""))
    if keywords:
        match["keywords"] = keywords
    for key in ("contains", "regex", "sender", "device_id"):
        value = post.get(key, "")
        if value.strip():
            match[key] = value if key == "regex" else value.strip()
    actions: list[dict[str, Any]] = []
    try:
        rows = min(int(post.get("action_rows", ACTION_ROWS)), MAX_ACTION_ROWS)
    except ValueError:
        rows = ACTION_ROWS
    for i in range(rows):
        kind = post.get(f"action-{i}-type", "")
        value = post.get(f"action-{i}-value", "")
        if not kind:
            continue
        if kind == "reply":
            actions.append({"type": "reply", "text": value})
        elif kind == "forward":
            if value.strip().startswith(("http://", "https://", "mailto:")):
                actions.append({"type": "forward", "url": value.strip(), "format": "standard"})
            else:
                actions.append({"type": "forward", "webhook_id": value.strip()})
        elif kind == "tag":
            actions.append({"type": "tag", "tag": value})
        else:
            actions.append({"type": kind})
    try:
        priority = int(post.get("priority", "100"))
    except ValueError:
        priority = 100
    return {
        "name": post.get("name", "").strip()[:100],
        "enabled": post.get("enabled") == "on",
        "stop": post.get("stop") == "on",
        "priority": priority,
        "match": match,
        "actions": actions,
    }


def _action_rows(actions: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for a in actions:
        value = a.get("text") or a.get("webhook_id") or a.get("url") or a.get("tag") or ""
        rows.append({"type": a.get("type", ""), "value": value})
    while len(rows) < max(ACTION_ROWS, len(actions) + 1):
        rows.append({"type": "", "value": ""})
    return rows


def _render_editor(
    request: HttpRequest, rule: Rule | None, values: dict[str, Any], status: int = 200, **extra: Any
) -> HttpResponse:
    match = values.get("match") or {}
    context = {
        "rule": rule,
        "values": values,
        "keywords": " ".join(match.get("keywords") or []),
        "match": match,
        "action_rows": _action_rows(values.get("actions") or []),
        "action_types": ACTION_TYPES,
        "devices": queries.devices_for_filter(),
        "webhooks": Endpoint.objects.filter(internal=False).order_by("-id")[:100],
        **extra,
    }
    return render_page(request, "dashboard/rule_edit.html", context, section="rules", status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: str | None = None) -> HttpResponse:
    rule = None
    if rule_id is not None:
        try:
            rule = automation.get_rule(rule_id)
        except DomainError as exc:
            return _render_list(request, exc.status_code, error=exc)
    if request.method == "GET":
        values: dict[str, Any] = {
            "name": rule.name if rule else "",
            "enabled": rule.enabled if rule else True,
            "stop": rule.stop if rule else False,
            "priority": rule.priority if rule else 100,
            "match": rule.match if rule else {},
            "actions": rule.actions if rule else [],
        }
        return _render_editor(request, rule, values)
    values = _rule_from_form(request.POST)
    try:
        if not values["name"]:
            raise DomainError("Give the rule a name.", fields={"name": ["Required."]})
        if rule is None:
            rule = automation.create_rule(**values)
            messages.success(request, f"Rule “{rule.name}” created.")
        else:
            automation.update_rule(rule_id=rule.pk, **values)
            messages.success(request, f"Rule “{values['name']}” saved.")
    except DomainError as exc:
        return _render_editor(request, rule, values, exc.status_code, error=exc)
    return redirect("dashboard:rules")


@admin_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: str) -> HttpResponse:
    try:
        automation.delete_rule(rule_id=rule_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Rule deleted.")
    return redirect("dashboard:rules")
