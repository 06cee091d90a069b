"""GSM 03.38 encoding choice and segment counting, as Twilio's calculator counts them.

docs/api.md#encoding-and-segments: a message is GSM-7 only if every character is in the basic or extension
table; one other character (a curly quote, a non-breaking space, an emoji) turns the whole
message into UCS-2 and roughly halves what fits in a segment, which doubles its price.
A character (an escape pair, a surrogate pair, a whole grapheme) is never split between
segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"

_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENSION = frozenset(GSM7_EXTENSION)

SINGLE_GSM7, MULTI_GSM7 = 160, 153  # septets
SINGLE_UCS2, MULTI_UCS2 = 70, 67  # UTF-16 code units

_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" | "UCS-2"
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2


def _graphemes(text: str) -> list[str]:
    # Twilio splits "\r\n" back into two characters after grapheme segmentation.
    out: list[str] = []
    for g in _GRAPHEME.findall(text):
        out.extend(["\r", "\n"] if g == "\r\n" else [g])
    return out


def _gsm_cost(grapheme: str) -> int | None:
    if len(grapheme) != 1:
        return None
    if grapheme in _BASIC:
        return 1
    if grapheme in _EXTENSION:
        return 2
    return None


def _ucs2_cost(grapheme: str) -> int:
    return len(grapheme.encode("utf-16-le")) // 2


def _pack(costs: list[int], single: int, multi: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def segment_info(text: str) -> SegmentInfo:
    graphemes = _graphemes(text)
    gsm_costs = [_gsm_cost(g) for g in graphemes]
    if all(c is not None for c in gsm_costs):
        costs = [c for c in gsm_costs if c is not None]
        return SegmentInfo(
            "GSM-7", _pack(costs, SINGLE_GSM7, MULTI_GSM7) if costs else 1, sum(costs)
        )
    ucs_costs = [_ucs2_cost(g) for g in graphemes]
    return SegmentInfo("UCS-2", _pack(ucs_costs, SINGLE_UCS2, MULTI_UCS2), sum(ucs_costs))
