"""The text side of rule matching: keywords, sender globs, bounded regexes and reply templates.

Pure functions with no database access, so the property tests can hammer them.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import regex

log = logging.getLogger(__name__)

# A rule's pattern may not be longer than this, and one search may not run longer than
# REGEX_TIMEOUT seconds: a catastrophic pattern such as `(a|aa)+$` costs at most that much per
# message instead of hanging a worker (the `regex` module checks the timeout while it
# backtracks, which the standard `re` module cannot do).
MAX_REGEX_LENGTH = 500
REGEX_TIMEOUT = 0.05

# Invisible characters some keyboards put between words; treated as spaces. Other format
# characters (zero-width joiners, BOMs, direction marks) are dropped like punctuation.
_EXTRA_SEPARATORS = str.maketrans({"\u200b": " ", "\u180e": " "})

_TEMPLATE = regex.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")
TEMPLATE_NAMES = ("from", "body", "device")


def _normal(text: str) -> str:
    # NFKC folds full-width and compatibility forms ("ＳＴＯＰ"); casefold handles "ß" etc.;
    # the second NFKC tidies what casefolding produced.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _keep(ch: str) -> bool:
    """Letters, digits and combining marks make up words; punctuation, symbols and control
    or format characters are ignored."""
    return unicodedata.category(ch)[0] in "LNM"


def words(text: str, limit: int | None = None) -> list[str]:
    """The words of `text` as keyword matching sees them.

    Words are separated by any Unicode whitespace; within a word, punctuation and symbols are
    ignored ("stop!" → "stop", "opt-out" → "optout"), and a token made only of punctuation
    ("!!!", "--") is not a word at all. So a keyword never matches inside a longer word:
    "STOPPING" is the word "stopping", never "stop".
    """
    out: list[str] = []
    for raw in _normal(text).translate(_EXTRA_SEPARATORS).split():
        word = "".join(ch for ch in raw if _keep(ch))
        if word:
            out.append(word)
            if limit is not None and len(out) >= limit:
                break
    return out


def keyword_words(keyword: str) -> tuple[str, ...]:
    """A keyword as a tuple of words: "OPT OUT" → ("opt", "out")."""
    return tuple(words(keyword))


def starts_with_keyword(
    body_words: list[str], keywords: Iterable[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The first keyword the message starts with (as whole words), else None."""
    for keyword in keywords:
        if keyword and tuple(body_words[: len(keyword)]) == keyword:
            return keyword
    return None


def compile_sender(pattern: str) -> regex.Pattern[str]:
    """`+1555*` → anything starting with +1555; without `*` it is an exact match.

    Only `*` is special; alphanumeric sender ids compare case-insensitively.
    """
    parts = (regex.escape(part) for part in pattern.split("*"))
    return regex.compile("^" + ".*".join(parts) + "$", regex.IGNORECASE | regex.DOTALL)


def compile_regex(pattern: str) -> regex.Pattern[str]:
    """Compile a rule's pattern; raises ValueError with a sentence for the API."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"The pattern is longer than {MAX_REGEX_LENGTH} characters.")
    try:
        return regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"Not a valid regular expression: {exc}.") from None


def regex_search(pattern: regex.Pattern[str], text: str) -> bool:
    """Whether the pattern occurs in `text`; a search that times out counts as no match."""
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        log.warning(
            "rule pattern %r timed out after %ss; treated as no match",
            pattern.pattern,
            REGEX_TIMEOUT,
        )
        return False


def template_names(text: str) -> list[str]:
    """The placeholders used in a reply text, for validation."""
    return [m.group(1) for m in _TEMPLATE.finditer(text)]


def render(text: str, values: Mapping[str, Any]) -> str:
    """Fill `{{from}}`, `{{body}}`, `{{device}}` in a reply text."""
    return _TEMPLATE.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)
