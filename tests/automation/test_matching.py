"""The keyword matcher and friends, as pure functions, with property tests."""

from __future__ import annotations

import string
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from automation.matching import (
    compile_regex,
    compile_sender,
    keyword_words,
    regex_search,
    render,
    starts_with_keyword,
    words,
)
from automation.rules import CompiledRule

KEYWORDS = ["STOP", "YES", "Y", "HELP", "OPT OUT", "confirm2", "SÍ", "Ja"]

# Every Unicode space separator plus the usual ASCII ones.
unicode_spaces = st.sampled_from(
    [
        " ",
        "\t",
        "\n",
        "\r\n",
        "\u00a0",
        "\u1680",
        "\u2002",
        "\u2003",
        "\u2009",
        "\u200a",
        "\u2028",
        "\u2029",
        "\u202f",
        "\u205f",
        "\u3000",
        "\u200b",
    ]
)
spacing = st.lists(unicode_spaces, min_size=1, max_size=3).map("".join)
optional_spacing = st.lists(unicode_spaces, max_size=3).map("".join)
punctuation = st.text(alphabet=string.punctuation + "¡¿«»“”‘’…–—·", min_size=0, max_size=4)
word_chars = st.text(alphabet=string.ascii_letters + string.digits + "éßñ", min_size=1, max_size=6)
rest = st.one_of(st.just(""), st.builds(lambda s, t: s + t, spacing, st.text(max_size=40)))


def matches(keyword: str, body: str) -> bool:
    return starts_with_keyword(words(body), [keyword_words(keyword)]) is not None


def random_case(text: str, flips: list[bool]) -> str:
    return "".join(
        ch.swapcase() if flip else ch
        for ch, flip in zip(text, flips + [False] * len(text), strict=False)
    )


@given(
    keyword=st.sampled_from(KEYWORDS),
    flips=st.lists(st.booleans(), max_size=10),
    lead=optional_spacing,
    before=punctuation,
    after=punctuation,
    tail=rest,
)
@example(keyword="STOP", flips=[], lead="", before="", after="!", tail="")
@example(keyword="OPT OUT", flips=[], lead="\u3000", before="¡", after="?", tail=" now")
def test_a_keyword_matches_in_any_case_with_punctuation_and_unicode_spaces(
    keyword, flips, lead, before, after, tail
):
    body = lead + before + random_case(keyword, flips) + after + tail
    assert matches(keyword, body), body


@given(
    keyword=st.sampled_from(KEYWORDS),
    flips=st.lists(st.booleans(), max_size=10),
    prefix=st.one_of(st.just(""), word_chars),
    suffix=st.one_of(st.just(""), word_chars),
    tail=rest,
)
@example(keyword="STOP", flips=[], prefix="", suffix="PING", tail="")
@example(keyword="YES", flips=[], prefix="", suffix="terday", tail="")
@example(keyword="Y", flips=[], prefix="", suffix="es", tail="")
def test_a_keyword_inside_a_longer_word_never_matches(keyword, flips, prefix, suffix, tail):
    if not prefix and not suffix:
        return
    cased = random_case(keyword, flips)
    body = prefix + cased + suffix + tail
    assert not matches(keyword, body), body


@given(keyword=st.sampled_from(KEYWORDS), first=word_chars, sep=spacing, tail=rest)
def test_a_keyword_that_is_not_the_first_word_does_not_match(keyword, first, sep, tail):
    if words(first) == list(keyword_words(keyword))[:1]:
        return
    body = first + sep + keyword + tail
    assert not matches(keyword, body), body


@given(st.text(max_size=200))
def test_words_never_contain_spaces_or_punctuation(text):
    for word in words(text):
        assert word
        assert not any(ch.isspace() for ch in word)
        assert not any(ch in string.punctuation for ch in word)


def test_full_width_and_accented_forms():
    assert matches("STOP", "ＳＴＯＰ")
    assert matches("SÍ", "sí, claro")
    assert not matches("SI", "sí")  # accents are letters, not punctuation


def test_a_keyword_of_only_punctuation_has_no_words():
    assert keyword_words("!!!") == ()


@pytest.mark.parametrize(
    ("pattern", "sender", "expected"),
    [
        ("+1555*", "+15551234567", True),
        ("+1555*", "+16661234567", False),
        ("+15551234567", "+15551234567", True),
        ("+15551234567", "+155512345678", False),
        ("*MPESA*", "mpesa", True),
        ("+1.55*", "+1555", False),  # only * is special
    ],
)
def test_sender_patterns(pattern, sender, expected):
    assert bool(compile_sender(pattern).match(sender)) is expected


def test_a_catastrophic_pattern_is_cut_off_quickly():
    pattern = compile_regex(r"(a|aa)+$")
    started = time.monotonic()
    assert regex_search(pattern, "a" * 1599 + "b") is False
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "x" * 501, "[z-a]", "*x"])
def test_bad_or_overlong_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        compile_regex(pattern)


def test_templates_fill_known_placeholders_and_leave_others():
    values = {"from": "+1555", "body": "hi", "device": "Front desk"}
    assert render("{{from}}/{{ body }}/{{device}}/{{other}}", values) == (
        "+1555/hi/Front desk/{{other}}"
    )


def test_a_compiled_rule_with_no_conditions_matches_everything():
    rule = CompiledRule(id="rule_1", name="all", actions=[], stop=False)
    assert rule.matches(body="", body_words=[], sender="x", device_id=None)
