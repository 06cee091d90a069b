"""Group sends from sync code reuse one event loop per process with the Redis channel layer,
so channels-redis keeps its connections (one per loop) from one send to the next."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsgate import groups
from smsgate.channel_layer import ResilientRedisChannelLayer, redis_channel_layer_hosts


class RecordingLayer(ResilientRedisChannelLayer):
    """The production layer's class, sending nowhere: it notes the loop of each send."""

    def __init__(self) -> None:
        super().__init__(hosts=redis_channel_layer_hosts("redis://127.0.0.1:9/0"))
        self.loops: list[asyncio.AbstractEventLoop] = []

    def groups_with_members(self, groups: Any) -> set[str]:
        return set(groups)  # every group has a member: each send goes to the loop

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.loops.append(asyncio.get_running_loop())


def test_the_production_layer_sends_on_one_loop_per_process(monkeypatch: pytest.MonkeyPatch):
    layer = RecordingLayer()
    monkeypatch.setattr(groups, "get_channel_layer", lambda: layer)

    groups.send_to_groups([("inbox", {"type": "inbox.update"})])
    groups.send_to_groups([("inbox", {"type": "inbox.update"})])

    # async_to_sync would have run each send on a loop of its own: a new Redis connection each.
    assert len(layer.loops) == 2 and layer.loops[0] is layer.loops[1]


class EmptyGroupsLayer(RecordingLayer):
    """Only the group "phones" has a member."""

    def groups_with_members(self, groups: Any) -> set[str]:
        return {group for group in groups if group == "phones"}


def test_a_group_without_members_is_not_sent_to(monkeypatch: pytest.MonkeyPatch):
    layer = EmptyGroupsLayer()
    monkeypatch.setattr(groups, "get_channel_layer", lambda: layer)

    groups.send_to_groups([("inbox", {"type": "inbox.update"})])
    assert layer.loops == []  # no hop to the sending loop at all

    groups.send_to_groups([("inbox", {"type": "inbox.update"}), ("phones", {"type": "x"})])
    assert len(layer.loops) == 1  # "phones" only
