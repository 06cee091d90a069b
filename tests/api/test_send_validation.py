"""A plain send skips SendSerializer (messaging.serializers.plain_send) only where the
serializer would accept it as it is: same validated data, and every refusal still comes from
the serializer, with its messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.serializers import SendSerializer, plain_send

FIELDS = ["to", "body", "device_id", "sim_slot", "app_id", "failover", "respect_quiet_hours"]

# Values near every edge the serializer draws: types JSON gives, blanks, whitespace to trim,
# NUL, lone surrogates, lengths at and past the limits, slots out of range, booleans as ints.
text = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "  dev_1  ",
            "+15551234567",
            "a\x00b",
            "\ud800",
            "é",
            "x" * 40,
            "x" * 41,
            " " + "x" * 40,
            "y" * 1600,
            "y" * 1601,
            "\t\n",
        ]
    ),
    st.text(max_size=50),
)
value = st.one_of(
    text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=10),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(text, max_size=3),
    st.dictionaries(st.text(max_size=3), text, max_size=2),
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from([*FIELDS, "send_at", "metadata", "unknown"]), value),
    st.fixed_dictionaries(
        {"to": st.one_of(text, value), "body": st.one_of(text, value)},
        optional=dict.fromkeys(FIELDS[2:], value),
    ),
)


def serializer_says(data: Any) -> dict[str, Any] | None:
    serializer = SendSerializer(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_a_plain_send_is_what_the_serializer_would_validate(data):
    taken = plain_send(data)
    if taken is not None:
        assert taken == serializer_says(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.fixed_dictionaries(
        {"to": st.one_of(text, st.lists(text, max_size=3)), "body": text},
        optional={
            "device_id": st.one_of(st.none(), text),
            "app_id": st.one_of(st.none(), text),
            "sim_slot": st.one_of(st.none(), st.booleans(), st.integers(min_value=-1, max_value=9)),
            "failover": st.one_of(st.booleans(), st.none()),
            "respect_quiet_hours": st.booleans(),
        },
    )
)
def test_plain_sends_near_the_limits(data):
    taken = plain_send(data)
    if taken is not None:
        assert taken == serializer_says(data)


@pytest.mark.parametrize(
    "data",
    [
        {"to": "+15551234567", "body": "hi"},
        {"to": ["+15551234567", "+15551234568"], "body": "hi", "device_id": " dev_1 "},
        {"to": "+15551234567", "body": " ", "device_id": None, "sim_slot": None},
        {"to": "+15551234567", "body": "y" * 1600, "sim_slot": 8, "respect_quiet_hours": True},
    ],
)
def test_common_sends_take_the_plain_path(data):
    assert plain_send(data) is not None
    assert plain_send(data) == serializer_says(data)


@pytest.mark.parametrize(
    "data",
    [
        {"to": "+15551234567", "body": ""},
        {"to": "+15551234567", "body": "y" * 1601},
        {"to": "+15551234567", "body": "a\x00"},
        {"to": "+15551234567", "body": "\ud800"},
        {"to": "+15551234567", "body": 5},
        {"to": "+15551234567", "body": "hi", "device_id": "  "},
        {"to": "+15551234567", "body": "hi", "device_id": "x" * 41},
        {"to": "+15551234567", "body": "hi", "sim_slot": True},
        {"to": "+15551234567", "body": "hi", "sim_slot": "1"},
        {"to": "+15551234567", "body": "hi", "failover": 1},
        {"to": [], "body": "hi"},
        {"to": "+15551234567", "body": "hi", "send_at": None},
        {"body": "hi"},
    ],
)
def test_anything_else_goes_to_the_serializer(data):
    assert plain_send(data) is None
