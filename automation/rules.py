"""Rule validation, compiled rules and the per-process rule cache.

Every process keeps the enabled rules compiled in memory under the version of the rules in
the database (webhooks/versions.py): a trigger replaces that version in the statement that
changes a rule, whoever makes the change, so every process compiles the rules again at its
next inbound batch after the change commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import regex
from django.apps import apps

from automation.matching import (
    TEMPLATE_NAMES,
    compile_regex,
    compile_sender,
    keyword_words,
    regex_search,
    template_names,
)
from automation.models import Rule
from devices.models import Device
from messaging.models import ProviderApp
from smsgate.batch import batch_cached
from smsgate.errors import DomainError
from smsgate.http import OutboundError, UnsafeDestination, check_destination
from smsgate.phones import normalize_sender
from webhooks.versions import RULES, VersionedCache

log = logging.getLogger(__name__)

MATCH_KEYS = ("keywords", "contains", "regex", "sender", "device_id")
ACTION_TYPES = ("reply", "forward", "opt_out", "opt_in", "tag")
FORWARD_FORMATS = ("standard", "chat", "form", "slack", "email")
MAX_KEYWORDS = 50
MAX_ACTIONS = 20
MAX_REPLY_CHARS = 1600


# --- validation -----------------------------------------------------------------------------


class RuleInvalid(DomainError):
    """Bad rule input (400); `fields` maps dotted names ("match.regex") to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        first, messages = next(iter(errors.items()))
        super().__init__(f"The rule is not valid: {first}: {messages[0]}", fields=errors)
        self.errors = errors


def _string(value: Any, name: str, errors: dict[str, list[str]], max_length: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors[name] = ["Must be a string or null."]
        return None
    if len(value) > max_length:
        errors[name] = [f"Must be at most {max_length} characters."]
        return None
    return value


def _reject_nul(value: Any, name: str) -> None:
    """PostgreSQL cannot store NUL in text or JSON: a 400 here instead of a 500 there."""
    if isinstance(value, str) and "\x00" in value:
        raise RuleInvalid({name: ["Must not contain NUL characters."]})
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, name)
            _reject_nul(item, f"{name}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{name}[{i}]")


def clean_match(raw: Any) -> dict[str, Any]:
    """Validate and normalise a rule's conditions; raises RuleInvalid naming `match.<key>`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RuleInvalid({"match": ["Must be an object of conditions."]})
    _reject_nul(raw, "match")
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in MATCH_KEYS:
            errors[f"match.{key}"] = [f"Unknown condition; use {', '.join(MATCH_KEYS)}."]
    cleaned: dict[str, Any] = dict.fromkeys(MATCH_KEYS)

    keywords = raw.get("keywords")
    if isinstance(keywords, str):
        keywords = [keywords]
    if keywords:
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            errors["match.keywords"] = ["Must be a list of strings."]
        elif len(keywords) > MAX_KEYWORDS:
            errors["match.keywords"] = [f"At most {MAX_KEYWORDS} keywords."]
        elif any(len(k) > 100 or not keyword_words(k) for k in keywords):
            errors["match.keywords"] = ["Each keyword needs a letter or digit (100 at most)."]
        else:
            cleaned["keywords"] = [k.strip() for k in keywords]
    elif keywords not in (None, []):
        errors["match.keywords"] = ["Must be a list of strings."]

    cleaned["contains"] = _string(raw.get("contains"), "match.contains", errors, 500)

    pattern = _string(raw.get("regex"), "match.regex", errors, 10_000)
    if pattern is not None:
        try:
            compile_regex(pattern)
            cleaned["regex"] = pattern
        except ValueError as exc:
            errors["match.regex"] = [str(exc)]

    sender = _string(raw.get("sender"), "match.sender", errors, 64)
    if sender is not None:
        sender = sender.strip()
        cleaned["sender"] = sender if "*" in sender else normalize_sender(sender)

    device_id = _string(raw.get("device_id"), "match.device_id", errors, 40)
    if device_id is not None:
        # A provider app is a line too: its id selects the messages that came in on it.
        if not (
            Device.objects.filter(pk=device_id).exists()
            or ProviderApp.objects.filter(pk=device_id).exists()
        ):
            errors["match.device_id"] = [f"There is no device or app {device_id!r}."]
        cleaned["device_id"] = device_id

    if errors:
        raise RuleInvalid(errors)
    return cleaned


def _webhook_endpoint_exists(endpoint_id: str) -> bool | None:
    """None when the webhooks app has no endpoint model to check against."""
    try:
        model = apps.get_model("webhooks", "Endpoint")
    except LookupError:
        return None
    # Internal endpoints hold other rules' ad-hoc URLs; they are not addressable by id.
    return bool(model._default_manager.filter(pk=endpoint_id, internal=False).exists())


def _check_forward_url(url: str, fmt: str, name: str, errors: dict[str, list[str]]) -> None:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if fmt == "email":
        if scheme != "mailto" or not parts.path:
            errors[name] = ["The email format needs a mailto: URL."]
        return
    if scheme not in ("http", "https") or not parts.hostname:
        errors[name] = ["Must be an http:// or https:// URL."]
        return
    try:
        check_destination(url)
    except UnsafeDestination as exc:
        errors[name] = [f"This address is refused: {exc}"]
    except OutboundError as exc:
        # A name that does not resolve yet is accepted (as for webhooks); every delivery
        # checks the resolved address again.
        if "cannot be resolved" not in str(exc):
            errors[name] = [str(exc)]


def _clean_action(raw: Any, i: int, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    prefix = f"actions[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        errors[f"{prefix}.type"] = [f"Each action is an object with a type: {ACTION_TYPES}."]
        return None
    kind = raw["type"]
    allowed = {
        "reply": {"text"},
        "forward": {"webhook_id", "url", "format"},
        "opt_out": set(),
        "opt_in": set(),
        "tag": {"tag"},
    }.get(kind)
    if allowed is None:
        errors[f"{prefix}.type"] = [f"Unknown action; use one of {', '.join(ACTION_TYPES)}."]
        return None
    for key in raw:
        if key != "type" and key not in allowed:
            errors[f"{prefix}.{key}"] = [f"Not an option of the {kind} action."]
    action: dict[str, Any] = {"type": kind}
    if kind == "reply":
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            errors[f"{prefix}.text"] = ["A reply needs a non-empty text."]
        elif len(text) > MAX_REPLY_CHARS:
            errors[f"{prefix}.text"] = [f"At most {MAX_REPLY_CHARS} characters."]
        elif unknown := [n for n in template_names(text) if n not in TEMPLATE_NAMES]:
            errors[f"{prefix}.text"] = [
                f"Unknown placeholder {{{{{unknown[0]}}}}}; use "
                + ", ".join(f"{{{{{n}}}}}" for n in TEMPLATE_NAMES)
                + "."
            ]
        else:
            action["text"] = text
    elif kind == "forward":
        webhook_id, url = raw.get("webhook_id"), raw.get("url")
        fmt = raw.get("format") or "standard"
        if bool(webhook_id) == bool(url):
            errors[f"{prefix}.webhook_id"] = ["Give either webhook_id or url (with a format)."]
        elif webhook_id:
            if not isinstance(webhook_id, str):
                errors[f"{prefix}.webhook_id"] = ["Must be a webhook id."]
            elif _webhook_endpoint_exists(webhook_id) is False:
                errors[f"{prefix}.webhook_id"] = [f"There is no webhook {webhook_id!r}."]
            else:
                action["webhook_id"] = webhook_id
            if "format" in raw:
                errors[f"{prefix}.format"] = ["The webhook's own format is used."]
        else:
            if fmt not in FORWARD_FORMATS:
                errors[f"{prefix}.format"] = [f"Use one of {', '.join(FORWARD_FORMATS)}."]
            elif not isinstance(url, str) or len(url) > 2000:
                errors[f"{prefix}.url"] = ["Must be a URL of at most 2000 characters."]
            else:
                _check_forward_url(url, fmt, f"{prefix}.url", errors)
                action["url"] = url.strip()
            action["format"] = fmt
    elif kind == "tag":
        tag = raw.get("tag")
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 50:
            errors[f"{prefix}.tag"] = ["A tag is a non-empty string of at most 50 characters."]
        else:
            action["tag"] = tag.strip()
    return action


def clean_actions(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise RuleInvalid({"actions": ["Give a non-empty list of actions."]})
    if len(raw) > MAX_ACTIONS:
        raise RuleInvalid({"actions": [f"At most {MAX_ACTIONS} actions."]})
    _reject_nul(raw, "actions")
    errors: dict[str, list[str]] = {}
    cleaned = [_clean_action(item, i, errors) for i, item in enumerate(raw)]
    if errors:
        raise RuleInvalid(errors)
    return [a for a in cleaned if a is not None]


# --- compiled rules and the cache -----------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    id: str
    name: str
    actions: list[dict[str, Any]]
    stop: bool
    keywords: tuple[tuple[str, ...], ...] = ()
    contains: str | None = None
    pattern: regex.Pattern[str] | None = None
    sender: regex.Pattern[str] | None = None
    device_id: str | None = None

    @classmethod
    def from_rule(cls, rule: Rule) -> CompiledRule:
        match = rule.match or {}
        pattern = None
        if match.get("regex"):
            try:
                pattern = compile_regex(match["regex"])
            except ValueError:
                # Stored before a stricter bound existed: it can no longer match anything.
                pattern = regex.compile(r"(?!)")
        return cls(
            id=rule.pk,
            name=rule.name,
            actions=list(rule.actions or []),
            stop=rule.stop,
            keywords=tuple(
                kw for kw in (keyword_words(k) for k in match.get("keywords") or []) if kw
            ),
            contains=(match.get("contains") or "").casefold() or None,
            pattern=pattern,
            sender=compile_sender(match["sender"]) if match.get("sender") else None,
            device_id=match.get("device_id") or None,
        )

    def matches(
        self, *, body: str, body_words: list[str], sender: str, device_id: str | None
    ) -> bool:
        # Cheapest conditions first; the regex, which may cost up to its timeout, last.
        if self.device_id is not None and self.device_id != device_id:
            return False
        if self.sender is not None and not self.sender.match(sender):
            return False
        if self.keywords and not any(tuple(body_words[: len(kw)]) == kw for kw in self.keywords):
            return False
        if self.contains is not None and self.contains not in body.casefold():
            return False
        return not (self.pattern is not None and not regex_search(self.pattern, body))

    @property
    def longest_keyword(self) -> int:
        return max((len(k) for k in self.keywords), default=0)


class RuleSet(list[CompiledRule]):
    """The enabled rules in evaluation order, and how many leading words of a message their
    keywords can look at (at least 2: the built-in `OPT OUT`)."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        super().__init__(rules)
        self.keyword_depth = max([2, *(r.longest_keyword for r in rules)])


def _load_rules() -> RuleSet:
    return RuleSet([CompiledRule.from_rule(r) for r in Rule.objects.filter(enabled=True)])


# Compiled once per process and version (webhooks/versions.py): a rule's regexes and keywords
# are not parsed again for every inbound SMS.
_rules = VersionedCache(RULES, _load_rules)


def enabled_rules() -> RuleSet:
    """The enabled rules in evaluation order, from memory unless they changed.

    Asked once per batch of inbound messages; the version check is one short SELECT per
    batch, shared with the webhook endpoints'."""
    return batch_cached("automation.enabled_rules", _rules.get)
