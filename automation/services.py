"""Every change to rules goes through here (API, dashboard, admin actions), and the dry run.

Nothing here tells the processes' rule caches: the database does, in the statement of the
change (automation/rules.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from automation.engine import Evaluation, Inbound
from automation.models import Rule
from automation.rules import RuleInvalid, clean_actions, clean_match
from devices.models import Device
from messaging.models import OptOut, ProviderApp
from smsgate.errors import InvalidInput, NotFound
from smsgate.phones import normalize_sender

RULE_FIELDS = ("name", "enabled", "priority", "match", "actions", "stop")
PRIORITY_STEP = 10


def create_rule(
    *,
    name: str,
    actions: Any,
    match: Any = None,
    enabled: bool = True,
    priority: int = 100,
    stop: bool = False,
) -> Rule:
    rule = Rule(
        name=name,
        enabled=enabled,
        priority=priority,
        match=clean_match(match),
        actions=clean_actions(actions),
        stop=stop,
    )
    rule.save(force_insert=True)
    return rule


def get_rule(rule_id: str) -> Rule:
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"There is no rule {rule_id!r}.")
    return rule


def update_rule(*, rule_id: str, **changes: Any) -> Rule:
    """Change the given fields of a rule (a PATCH); match and actions are validated again."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "Not a field of a rule.")
    if "match" in changes:
        changes["match"] = clean_match(changes["match"])
    if "actions" in changes:
        changes["actions"] = clean_actions(changes["actions"])
    with transaction.atomic():
        rule = Rule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            raise NotFound(f"There is no rule {rule_id!r}.")
        for key, value in changes.items():
            setattr(rule, key, value)
        rule.save(update_fields=[*changes, "updated_at"])
    return rule


def delete_rule(*, rule_id: str) -> None:
    with transaction.atomic():
        deleted, _ = Rule.objects.filter(pk=rule_id).delete()
        if not deleted:
            raise NotFound(f"There is no rule {rule_id!r}.")


def reorder_rules(*, order: Sequence[str]) -> list[Rule]:
    """Put the listed rules first, in that order, then the others as they were.

    Priorities are rewritten 10, 20, 30…, leaving room to slot a rule in between later.
    """
    if len(set(order)) != len(order):
        raise InvalidInput("order", "A rule is listed twice.")
    with transaction.atomic():
        rules = list(Rule.objects.select_for_update().order_by("priority", "created_at", "id"))
        by_id = {rule.pk: rule for rule in rules}
        missing = [rule_id for rule_id in order if rule_id not in by_id]
        if missing:
            raise InvalidInput("order", f"There is no rule {missing[0]!r}.")
        listed = set(order)
        ordered = [by_id[rule_id] for rule_id in order] + [r for r in rules if r.pk not in listed]
        for i, rule in enumerate(ordered, start=1):
            rule.priority = i * PRIORITY_STEP
        Rule.objects.bulk_update(ordered, ["priority"])
    return ordered


@dataclass
class DryRunResult:
    matches: list[dict[str, Any]]
    opted_out: bool
    replies: list[str]


def dry_run(*, phone: str, body: str, device_id: str | None = None) -> DryRunResult:
    """What an inbound message would trigger right now; changes nothing.

    `opted_out` is the number's state before the message; `replies` the texts that would go
    out (after the loop guard and the opt-out list have had their say).
    """
    app_id = None
    if device_id:
        if ProviderApp.objects.filter(pk=device_id).exists():
            device_id, app_id = None, device_id
        elif not Device.objects.filter(pk=device_id).exists():
            raise InvalidInput("device_id", f"There is no device or app {device_id!r}.")
    sender = normalize_sender(phone)
    if not sender:
        raise InvalidInput("from", "A sender is required.")
    opted_out = OptOut.lists(sender)
    inbound = Inbound(phone=sender, body=body, device_id=device_id or None, app_id=app_id)
    evaluation = Evaluation(inbound, dry_run=True)
    evaluation.opted_out_before(opted_out)
    evaluation.run()
    matches = [
        {"rule_id": h.rule_id, "name": h.name, "builtin": h.builtin, "actions": h.actions}
        for h in evaluation.hits
    ]
    return DryRunResult(matches=matches, opted_out=opted_out, replies=evaluation.reply_texts)


__all__ = [
    "DryRunResult",
    "RuleInvalid",
    "create_rule",
    "delete_rule",
    "dry_run",
    "get_rule",
    "reorder_rules",
    "update_rule",
]
