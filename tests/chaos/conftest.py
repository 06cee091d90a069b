"""Fixtures for the chaos and scale-out tests: private PostgreSQL and Redis servers for the
session, a fresh database and emptied Redis per test, a webhook receiver, and a summary of the
measured timings at the end of the run.

These tests never touch the PostgreSQL and Redis that DATABASE_URL/REDIS_URL name (other test
runs share those); they run in CI (`CI=true`, in ./test's serial chaos run) or locally with
SMSGATE_CHAOS=1.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.stack import (
    TEMPLATE_DB,
    PrivatePostgres,
    PrivateRedis,
    Receiver,
    Stack,
    missing_tools,
    process_env,
)

ENABLED = os.environ.get("CI") == "true" or os.environ.get("SMSGATE_CHAOS") == "1"
TIMINGS: list[str] = []


def chaos_marks() -> list[pytest.MarkDecorator]:
    return [
        pytest.mark.chaos,
        pytest.mark.slow,
        pytest.mark.skipif(not ENABLED, reason="chaos tests run with CI=true or SMSGATE_CHAOS=1"),
    ]


def report(line: str) -> None:
    """A measured figure, printed in the terminal summary of the run."""
    TIMINGS.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("chaos timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    outcome = yield
    report_ = outcome.get_result()
    if report_.when == "call":
        item.stash[FAILED] = report_.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def chaos_root() -> Iterator[Path]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="smsgate-chaos-"))
    root.chmod(0o755)  # the postgres user must reach its cluster directory
    yield root
    if os.environ.get("SMSGATE_CHAOS_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def private_postgres(chaos_root: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(chaos_root)
    pg.start()
    pg.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    # Migrated once; every test gets a copy (CREATE DATABASE … TEMPLATE takes a blink).
    import subprocess
    import sys

    from tests.chaos.stack import ROOT

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=process_env(pg.url(TEMPLATE_DB), ""),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    yield pg
    pg.stop("immediate")


@pytest.fixture(scope="session")
def private_redis(chaos_root: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(chaos_root)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.release()
    receiver.stop()


@pytest.fixture
def make_stack(
    request: pytest.FixtureRequest,
    chaos_root: Path,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        # A test that failed half-way through a restart must not break the next one.
        try:
            private_postgres.execute("SELECT 1")
        except Exception:
            private_postgres.start()
        try:
            private_redis.ping()
        except Exception:
            private_redis.start()
        name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
        stack = Stack(chaos_root, private_postgres, private_redis, f"c{len(stacks)}_{name}", env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
    if request.node.stash.get(FAILED, False):
        for stack in stacks:
            print(stack.logs())
