"""The automation engine: built-in STOP/START/HELP, rules in priority order, the loop guard.

It runs inside the inbound transaction (`pipeline.inbound.receive`, step 2a), so the message,
its replies, opt-out changes, tags, forward requests and the hit log commit together or not at
all. Automation must never cost us the message itself: every action runs in its own savepoint
and a failing action is recorded as `failed` in the hit log instead of raising. The exceptions
are the tag writes and the hit log, written once per batch of inbound messages (_write_batch):
they only touch rows this transaction already holds or creates, so they cannot wait or conflict.

The same code runs the dry run (`POST /api/v1/rules/test`) with `dry_run=True`, which reads the
same state (opt-out, recent replies) but writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, JSONField, Value, When

from automation.matching import keyword_words, render, starts_with_keyword, words
from automation.models import RuleHit
from automation.rules import CompiledRule, enabled_rules
from devices.models import Device
from messaging import loopguard, optouts
from messaging.models import Conversation, Message, OptOut, ProviderApp
from messaging.routing import reply_app_id
from messaging.services import send_message
from smsgate.batch import batch_collect
from smsgate.errors import DomainError, InvalidInput, Refused
from smsgate.phones import can_reply_to
from smsgate.statements import insert_sql, update_by_pk
from webhooks.outbox import enqueue_forward

log = logging.getLogger(__name__)

STOP_KEYWORDS = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPT OUT",
    "OPTOUT",
)
START_KEYWORDS = ("START", "UNSTOP")
HELP_KEYWORDS = ("HELP", "INFO")

_STOP = tuple(keyword_words(k) for k in STOP_KEYWORDS)
_START = tuple(keyword_words(k) for k in START_KEYWORDS)
_HELP = tuple(keyword_words(k) for k in HELP_KEYWORDS)

DEFAULT_OPTOUT_CONFIRMATION = (
    "You are unsubscribed and will get no more messages from this number. "
    "Reply START to subscribe again."
)
DEFAULT_OPTIN_CONFIRMATION = (
    "You are subscribed to messages from this number again. Reply STOP to unsubscribe."
)
DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe or START to subscribe again."

DONE, SUPPRESSED, SKIPPED, FAILED, WOULD_RUN = (
    "done",
    "suppressed",
    "skipped",
    "failed",
    "would_run",
)
AUTOMATION_SOURCE = "automation"


def compliance_enabled() -> bool:
    return bool(getattr(settings, "SMSGATE_COMPLIANCE_ENABLED", True))


def _text(name: str, default: str) -> str:
    return str(getattr(settings, name, "") or default)


@dataclass
class Inbound:
    """What the engine looks at; built from a stored Message, or from a dry-run request."""

    phone: str
    body: str
    device_id: str | None = None
    sim_slot: int | None = None
    app_id: str | None = None
    message: Message | None = None

    @classmethod
    def from_message(cls, message: Message) -> Inbound:
        return cls(
            phone=message.from_number,
            body=message.body,
            device_id=message.device_id,
            sim_slot=message.sim_slot,
            app_id=message.app_id,
            message=message,
        )

    def line_name(self) -> str:
        """`{{device}}`: the name of the phone or provider app the message came in on."""
        if self.message is not None:
            line = self.message.device if self.device_id else self.message.app
            return getattr(line, "name", "") or ""
        if self.device_id:
            device = Device.objects.filter(pk=self.device_id).only("name").first()
            return device.name if device else ""
        if self.app_id:
            app = ProviderApp.objects.filter(pk=self.app_id).only("name").first()
            return app.name if app else ""
        return ""


@dataclass
class Hit:
    rule_id: str | None
    name: str
    builtin: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def suppressed(self) -> bool:
        return any(a["status"] == SUPPRESSED for a in self.actions)


class Evaluation:
    """One inbound message (or dry-run input) through compliance and the rules."""

    def __init__(self, inbound: Inbound, *, dry_run: bool = False) -> None:
        self.inbound = inbound
        self.dry_run = dry_run
        self.hits: list[Hit] = []
        self.replies: list[Message] = []
        self.reply_texts: list[str] = []
        self._opted_out: bool | None = None
        self._opted_out_by_this_rule = False
        self._replies_left_at_start: int | None = None
        self._replies_sent = 0
        self._tags: list[_TagRequest] = []

    def opted_out_before(self, opted_out: bool) -> None:
        """Seed the opt-out state when the caller already read it."""
        self._opted_out = opted_out

    # --- state the engine reads lazily (a query only when an action needs it) ---------------

    @property
    def opted_out(self) -> bool:
        if self._opted_out is None:
            self._opted_out = OptOut.lists(self.inbound.phone)
        return self._opted_out

    def _replies_left(self) -> int:
        # Read once per evaluation; the replies this evaluation sends are counted here.
        if self._replies_left_at_start is None:
            self._replies_left_at_start = loopguard.replies_left(self.inbound.phone)
        return self._replies_left_at_start - self._replies_sent

    # --- running ----------------------------------------------------------------------------

    def run(self) -> Evaluation:
        rules = enabled_rules()
        body_words = words(self.inbound.body, limit=rules.keyword_depth)
        builtins = compliance_enabled() and can_reply_to(self.inbound.phone)  # not for names
        if not (builtins and self._compliance(body_words)):
            self._rules(rules, body_words)
        if not self.dry_run and self.hits:
            self._record()
        return self

    def _compliance(self, body_words: list[str]) -> bool:
        """Handle STOP/START/HELP; True when the message was one (rules then do not run)."""
        if starts_with_keyword(body_words, _STOP):
            hit = Hit(None, "Built-in STOP", RuleHit.Builtin.STOP)
            if self.opted_out:
                # Already on the list: exactly one confirmation was sent when it got there.
                hit.actions.append(self._outcome("opt_out", SKIPPED, "already opted out"))
            else:
                outcome = self._opt_out("keyword", hit)
                hit.actions.append(outcome)
                if outcome["status"] in (DONE, WOULD_RUN):
                    text = _text("SMSGATE_OPTOUT_CONFIRMATION", DEFAULT_OPTOUT_CONFIRMATION)
                    hit.actions.append(self._reply(text, hit, confirmation=True))
        elif starts_with_keyword(body_words, _START):
            hit = Hit(None, "Built-in START", RuleHit.Builtin.START)
            if self.opted_out:
                hit.actions.append(self._opt_in())
            else:
                hit.actions.append(self._outcome("opt_in", SKIPPED, "was not opted out"))
            text = _text("SMSGATE_OPTIN_CONFIRMATION", DEFAULT_OPTIN_CONFIRMATION)
            hit.actions.append(self._reply(text, hit))
        elif starts_with_keyword(body_words, _HELP):
            hit = Hit(None, "Built-in HELP", RuleHit.Builtin.HELP)
            hit.actions.append(self._reply(_text("SMSGATE_HELP_TEXT", DEFAULT_HELP_TEXT), hit))
        else:
            return False
        self.hits.append(hit)
        return True

    def _rules(self, rules: list[CompiledRule], body_words: list[str]) -> None:
        sender = self.inbound.phone
        device_id = self.inbound.device_id or self.inbound.app_id
        for rule in rules:
            if not rule.matches(
                body=self.inbound.body, body_words=body_words, sender=sender, device_id=device_id
            ):
                continue
            hit = Hit(rule.id, rule.name)
            self._opted_out_by_this_rule = False
            for action in rule.actions:
                hit.actions.append(self._act(action, hit))
            self.hits.append(hit)
            if rule.stop:
                break

    def _act(self, action: dict[str, Any], hit: Hit) -> dict[str, Any]:
        kind = action["type"]
        # A reply after this rule's own opt_out is its confirmation, the one message an
        # opted-out number still gets; a number that was already opted out gets nothing.
        confirmation = self._opted_out_by_this_rule
        if kind == "reply":
            values = {
                "from": self.inbound.phone,
                "body": self.inbound.body,
                "device": self.inbound.line_name() if "{{" in action["text"] else "",
            }
            return self._reply(render(action["text"], values), hit, confirmation=confirmation)
        if kind == "opt_out":
            return self._opt_out("rule", hit)
        if kind == "opt_in":
            return self._opt_in()
        if kind == "tag":
            return self._tag(action["tag"])
        if kind == "forward":
            return self._forward(action)
        return self._outcome(kind, FAILED, "unknown action")

    # --- actions ----------------------------------------------------------------------------

    def _outcome(self, kind: str, status: str, detail: str = "", **extra: Any) -> dict[str, Any]:
        return {"type": kind, "status": status, "detail": detail, **extra}

    def _guarded(self, kind: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one action in its own savepoint; a failure is recorded, never raised."""
        try:
            with transaction.atomic():
                return work()
        except Refused as exc:
            if exc.code == "recipient_opted_out":
                raise  # the caller records it as suppressed, not failed
            return self._outcome(kind, FAILED, exc.message)
        except DomainError as exc:
            return self._outcome(kind, FAILED, exc.message)
        except Exception as exc:
            log.exception("automation action %s failed", kind)
            return self._outcome(kind, FAILED, f"internal error: {type(exc).__name__}")

    def _reply(self, text: str, hit: Hit, *, confirmation: bool = False) -> dict[str, Any]:
        text = text[:1600]
        if not can_reply_to(self.inbound.phone):
            return self._outcome("reply", SKIPPED, "the sender is not a phone number", text=text)
        opted_out = SUPPRESSED, "recipient opted out"
        if self._opted_out and not confirmation:
            return self._outcome("reply", *opted_out, text=text)
        if self._replies_left() <= 0:
            return self._outcome("reply", SUPPRESSED, loopguard.suppression_detail(), text=text)
        if self.dry_run:
            if self.opted_out and not confirmation:
                return self._outcome("reply", *opted_out, text=text)
            self.reply_texts.append(text)
            self._replies_sent += 1
            return self._outcome("reply", WOULD_RUN, text=text)
        try:
            # send_message checks the opt-out list itself; no need to ask twice.
            outcome = self._guarded("reply", lambda: self._send(text, hit, confirmation))
        except Refused as exc:
            if exc.code != "recipient_opted_out":
                raise
            self._opted_out = True
            return self._outcome("reply", *opted_out, text=text)
        if outcome["status"] == DONE:
            self._replies_sent += 1
        return outcome

    def _send(self, text: str, hit: Hit, confirmation: bool) -> dict[str, Any]:
        inbound = self.inbound
        metadata: dict[str, dict[str, Any]] = {
            "automation": {"rule_id": hit.rule_id, "builtin": hit.builtin}
        }
        if inbound.message is not None:
            metadata["automation"]["in_reply_to"] = inbound.message.pk
        if confirmation:
            # The one message an opted-out number still gets: the hand-out re-check lets it go.
            metadata["automation"]["confirmation"] = True
        common: dict[str, Any] = {
            "to": inbound.phone,
            "body": text,
            "device_id": inbound.device_id,
            "app_id": reply_app_id(inbound.app_id),
            "source": AUTOMATION_SOURCE,
            "metadata": metadata,
            "allow_opted_out": confirmation,
        }
        try:
            message = send_message(sim_slot=inbound.sim_slot, **common)
        except InvalidInput as exc:
            # The phone reported a slot it has no SIM registered in: any SIM of that phone.
            if "sim_slot" not in exc.fields or inbound.sim_slot is None:
                raise
            message = send_message(sim_slot=None, **common)
        self.replies.append(message)
        self.reply_texts.append(text)
        return self._outcome("reply", DONE, text=text, message_id=message.pk)

    def _opt_out(self, source: str, hit: Hit) -> dict[str, Any]:
        if self.dry_run:
            if self.opted_out:
                return self._outcome("opt_out", SKIPPED, "already opted out")
            self._opted_out = True
            self._opted_out_by_this_rule = True
            return self._outcome("opt_out", WOULD_RUN)
        keep = [m.pk for m in self.replies]

        def work() -> dict[str, Any]:
            result = optouts.opt_out(self.inbound.phone, source, keep=keep)
            if not result.created:
                return self._outcome("opt_out", SKIPPED, "already opted out")
            detail = f"cancelled {result.cancelled} queued" if result.cancelled else ""
            return self._outcome("opt_out", DONE, detail)

        outcome = self._guarded("opt_out", work)
        if outcome["status"] in (DONE, SKIPPED):
            self._opted_out = True
        self._opted_out_by_this_rule = outcome["status"] == DONE
        return outcome

    def _opt_in(self) -> dict[str, Any]:
        if self.dry_run:
            self._opted_out = False
            return self._outcome("opt_in", WOULD_RUN)

        def work() -> dict[str, Any]:
            removed = optouts.opt_in(self.inbound.phone)
            return self._outcome(
                "opt_in", DONE if removed else SKIPPED, "" if removed else "was not opted out"
            )

        outcome = self._guarded("opt_in", work)
        if outcome["status"] in (DONE, SKIPPED):
            self._opted_out = False
        return outcome

    def _tag(self, tag: str) -> dict[str, Any]:
        message = self.inbound.message
        if self.dry_run or message is None:
            return self._outcome("tag", WOULD_RUN, tag=tag)
        # Written with the hit log when the batch is complete (_write_batch), which settles
        # this outcome (done, or skipped when the conversation already had the tag).
        outcome = self._outcome("tag", DONE, tag=tag)
        # A conversation the inbound transaction created comes with the message, tags and
        # all; any other is read when the batch is written.
        created = message.conversation if Message.conversation.is_cached(message) else None
        self._tags.append((message.conversation_id, tag, outcome, created))
        return outcome

    def _forward(self, action: dict[str, Any]) -> dict[str, Any]:
        target: dict[str, Any] = {
            k: action[k] for k in ("webhook_id", "url", "format") if k in action
        }
        message = self.inbound.message
        if self.dry_run or message is None:
            return self._outcome("forward", WOULD_RUN, **target)

        def work() -> dict[str, Any]:
            enqueue_forward(
                message=message,
                endpoint_id=action.get("webhook_id"),
                url=action.get("url"),
                format=action.get("format", "standard"),
            )
            return self._outcome("forward", DONE, **target)

        outcome = self._guarded("forward", work)
        return {**target, **outcome}

    def _record(self) -> None:
        message = self.inbound.message
        hits = [
            RuleHit(
                rule_id=hit.rule_id,
                rule_name=hit.name[:100],
                builtin=hit.builtin,
                message=message,
                phone=self.inbound.phone,
                actions=hit.actions,  # the same dicts: a tag outcome settled later shows here
                suppressed=hit.suppressed,
            )
            for hit in self.hits
        ]
        # At once outside a batch; inside one, once for all its messages.
        batch_collect("automation.writes", [(self._tags, hits)], _write_batch)


# (conversation id, tag, the action's outcome to settle, the conversation when in memory)
_TagRequest = tuple[str | None, str, dict[str, Any], Conversation | None]


def _write_batch(items: list[tuple[list[_TagRequest], list[RuleHit]]]) -> None:
    """The tags and hit logs of a batch of evaluations: the tags first (their outcomes are in
    the hits), then one INSERT of every hit."""
    _apply_tags([request for tags, _ in items for request in tags])
    hits = [hit for _, hits in items for hit in hits]
    if hits:
        sql, params = insert_sql(RuleHit, hits)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _apply_tags(requests: list[_TagRequest]) -> None:
    """One read and one write for all tags of a batch.

    No savepoint: the inbound transaction already updated (or inserted) every one of these
    conversation rows, so it holds their locks; the read sees their current tags and the
    write cannot wait for or conflict with anyone. In request order, so a second tag of
    the same conversation in the batch is `skipped` like it was one by one.
    """
    if not requests:
        return
    current: dict[str, list[str]] = {}
    for _, _, _, conversation in requests:
        if conversation is not None:
            current.setdefault(conversation.pk, list(conversation.tags or []))
    unread = {pk for pk, _, _, _ in requests if pk and pk not in current}
    if unread:
        rows = Conversation.objects.filter(pk__in=unread).values_list("pk", "tags")
        current.update((pk, list(tags or [])) for pk, tags in rows)
    changed: set[str] = set()
    for conversation_id, tag, outcome, _ in requests:
        present = current.get(conversation_id or "")
        if present is None:
            outcome.update(status=FAILED, detail="no conversation")
        elif tag in present:
            outcome.update(status=SKIPPED, detail="already tagged")
        else:
            present.append(tag)
            changed.add(str(conversation_id))
    if not changed:
        return
    # Grouped by the resulting list (typically one or a few), so the statement stays small.
    by_tags: dict[tuple[str, ...], list[str]] = {}
    for pk in sorted(changed):
        by_tags.setdefault(tuple(current[pk]), []).append(pk)
    if len(by_tags) == 1:  # the usual case: one UPDATE without a CASE to build
        [(only, pks)] = by_tags.items()
        if len(pks) == 1:  # one message's tag: a statement built once per process
            update_by_pk(Conversation, pks[0], {"tags": list(only)})
        else:
            Conversation.objects.filter(pk__in=pks).update(tags=list(only))
        return
    Conversation.objects.filter(pk__in=changed).update(
        tags=Case(
            *[
                When(pk__in=pks, then=Value(list(tags), output_field=JSONField()))
                for tags, pks in by_tags.items()
            ],
            default=F("tags"),
            output_field=JSONField(),
        )
    )


def run_automation(*, message: Message, replies: list[Message]) -> Evaluation:
    """Evaluate one new inbound message; automated replies are appended to `replies`."""
    evaluation = Evaluation(Inbound.from_message(message)).run()
    replies.extend(evaluation.replies)
    return evaluation
