"""CPU time by process group, for showing what bounds a figure.

On a machine whose every process shares the same few cores, a throughput figure is bounded by
the CPU one item costs across all of them: the web worker that answers, the Celery worker that
delivers its webhooks, the receiver, PostgreSQL, Redis and the load generator itself. Reading
each group's CPU seconds (from /proc) before and after a phase gives that cost per item, and
`cores / cost` is the most the machine could do if nothing else ran.

A group is a root process and all of its descendants. Descendants that exited in between are
counted too: their time is in the root's (or a surviving parent's) cutime/cstime once they were
waited for, which is how PostgreSQL's backends and gunicorn's replaced workers are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its waited-for children)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; fields follow the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pids_named(name: str) -> list[int]:
    """Processes whose command is `name` and whose parent's is not (the roots of a server)."""
    found = [int(p) for p in os.listdir("/proc") if p.isdigit() and _comm(int(p)) == name]
    roots = []
    for pid in found:
        stat = _stat(pid)
        if stat is not None and _comm(stat[0]) != name:
            roots.append(pid)
    return roots


def server_groups() -> dict[str, list[int]]:
    """The local PostgreSQL and Redis servers, which every bench phase makes work."""
    return {"postgres": pids_named("postgres"), "redis": pids_named("redis-server")}


def _process_table() -> dict[int, tuple[int, float]]:
    """Every process now: its parent and its CPU seconds."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    return table


def _tree_seconds(table: dict[int, tuple[int, float]], roots: list[int]) -> float:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    members: set[int] = set()
    pending = [r for r in roots if r in table]
    while pending:
        pid = pending.pop()
        if pid not in members:
            members.add(pid)
            pending.extend(children.get(pid, []))
    return sum(table[p][1] for p in members)


@dataclass
class Snapshot:
    seconds: dict[str, float]


class CpuMeter:
    """Named groups of process trees; `this process` is always one (the load generator)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups

    def snapshot(self) -> Snapshot:
        table = _process_table()
        seconds = {name: _tree_seconds(table, roots) for name, roots in self.groups.items()}
        own = os.times()
        seconds["load generator"] = own.user + own.system
        return Snapshot(seconds)

    @staticmethod
    def per_item(before: Snapshot, after: Snapshot, items: int) -> dict[str, float]:
        """Milliseconds of CPU per item, by group, and their total."""
        if items <= 0:
            return {}
        spent = {
            name: max(0.0, after.seconds[name] - before.seconds.get(name, 0.0)) * 1000 / items
            for name in after.seconds
        }
        spent["total"] = sum(spent.values())
        return spent
