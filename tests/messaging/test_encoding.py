"""GSM 03.38 encoding choice and segment counts: the examples of docs/api.md#encoding-and-segments."""

from __future__ import annotations

import pytest

from messaging.encoding import segment_info

TABLE = [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 159 + "€", "GSM-7", 2),
    ("a" * 152 + "€" + "a", "GSM-7", 1),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("Ж" * 70, "UCS-2", 1),
    ("Ж" * 71, "UCS-2", 2),
    ("Ж" * 134, "UCS-2", 2),
    ("Ж" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1),
    ("😀" * 36, "UCS-2", 2),
]


@pytest.mark.parametrize(("text", "encoding", "segments"), TABLE, ids=lambda v: str(v)[:12])
def test_the_worked_table(text, encoding, segments):
    info = segment_info(text)
    assert (info.encoding, info.segments) == (encoding, segments)


@pytest.mark.parametrize(("text", "encoding", "segments"), TABLE, ids=lambda v: str(v)[:12])
@pytest.mark.django_db
def test_the_worked_table_through_the_api(admin_client, text, encoding, segments):
    response = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": text}, format="json"
    )
    assert response.status_code == 202
    assert (response.json()["encoding"], response.json()["segments"]) == (encoding, segments)


@pytest.mark.parametrize(
    ("text", "units"),
    [("€", 2), ("[]{}", 8), ("a\r\nb", 4), ("@£$¥", 4), ("Ä" * 3, 3)],
)
def test_extension_characters_count_two_septets(text, units):
    info = segment_info(text)
    assert (info.encoding, info.units) == ("GSM-7", units)


@pytest.mark.parametrize(
    "text",
    ["curly “quotes”", "non\u00a0breaking", "ç", "`backtick`", "emoji 😀", "tab\there"],
)
def test_one_character_outside_gsm7_makes_the_whole_message_ucs2(text):
    assert segment_info(text).encoding == "UCS-2"


def test_an_extension_character_is_never_split_across_segments():
    # 152 septets then "€" (2): the pair does not fit in the first 153-septet segment.
    assert segment_info("a" * 152 + "€" + "a" * 10).segments == 2
    # 306 septets would fill two segments exactly, but the pair cannot straddle them.
    assert segment_info("a" * 306).segments == 2
    assert segment_info("a" * 152 + "€" + "a" * 152).segments == 3
    assert segment_info("a" * 152 + "€" * 5).segments == 2


def test_a_surrogate_pair_is_never_split():
    # 66 units then an emoji (2 units): 68 > 67, so the emoji opens segment two.
    assert segment_info("Ж" * 66 + "😀" + "Ж" * 5).segments == 2
    assert segment_info("Ж" * 70 + "😀").segments == 2
