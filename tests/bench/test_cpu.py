"""The bench's CPU meter charges a process group for all of its descendants, including those
that already exited (PostgreSQL backends, replaced gunicorn workers): otherwise the "bound" it
prints would be too high, and a figure could look CPU-bound when it is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from bench.cpu import CpuMeter, Snapshot

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"

# A parent that spends almost nothing itself: one child burns 0.3 s of CPU and exits (reaped),
# a second burns 0.3 s and stays alive.
PARENT = textwrap.dedent(
    f"""
    import subprocess, sys, time
    subprocess.run([sys.executable, "-c", {BURN!r}])
    subprocess.Popen([sys.executable, "-c", {BURN!r} + "time.sleep(60)"])
    time.sleep(60)
    """
)


def test_a_group_is_charged_for_its_children_alive_and_exited() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], start_new_session=True)
    try:
        meter = CpuMeter({"tree": [parent.pid]})
        before = meter.snapshot()
        deadline = time.monotonic() + 30
        spent = 0.0
        while time.monotonic() < deadline:
            spent = meter.per_item(before, meter.snapshot(), 1)["tree"]
            if spent >= 600:
                break
            time.sleep(0.1)
        # Two children's 0.3 s each: only both count reach it (one, with the interpreters'
        # start-up, stays well under).
        assert spent >= 600, f"{spent:.0f} ms"
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_cost_per_item_and_total() -> None:
    before = Snapshot({"web": 1.0, "postgres": 2.0})
    after = Snapshot({"web": 1.5, "postgres": 2.25})
    assert CpuMeter.per_item(before, after, 50) == {"web": 10.0, "postgres": 5.0, "total": 15.0}
    assert CpuMeter.per_item(before, after, 0) == {}
