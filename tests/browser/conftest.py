"""Browser tests: the system Chromium, driven by Playwright, against a real daphne process.

The server is a separate process (the production shape: HTTP and websockets through the ASGI
app) on the test database, so these tests need PostgreSQL (a database two processes can share;
rows are committed by `transaction=True` tests) and Redis (the channel layer that carries live
updates from the test process, where messages are injected, to the server's websockets). On the
embedded defaults they are skipped; in CI both are there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "correct horse battery"

T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.redis)
            if not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true":
                item.add_marker(pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return (
        f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


@pytest.fixture(scope="session")
def server_url(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A daphne process serving the ASGI app on the test database."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("browser tests need PostgreSQL and Redis")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smsgate.settings_test",
        "DATABASE_URL": _database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "PYTHONUNBUFFERED": "1",
        # The webhook receivers of these tests are local servers on loopback.
        "SMSGATE_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    log_path = ROOT / "var" / f"browser-server-{env['PYTEST_XDIST_WORKER']}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "smsgate.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start; see {log_path}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    # Playwright's sync API keeps an event loop on this thread for as long as the browser is
    # open; the ORM calls the tests (and pytest-django's database set-up) make meanwhile are
    # still plain synchronous code. Module scope: the loop is closed after each browser
    # module, so later tests in the same process (async_to_sync, channels) run normally.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed: None, server_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def off_the_loop(fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread. Service calls that broadcast live updates use async_to_sync,
    which refuses to run on a thread that has an event loop (Playwright's)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    if errors:
        raise errors[0]
    return result[0]


@pytest.fixture
def admin_user(transactional_db: None) -> User:
    return User.objects.create_superuser("ada", "ada@example.org", PASSWORD)


@pytest.fixture
def staff_user(transactional_db: None) -> User:
    return User.objects.create_user("sam", "sam@example.org", PASSWORD)


def new_page(browser: Any, server_url: str, user: User | None = None) -> Any:
    """A fresh browser context at desktop size, logged in as `user` when given (by a session
    cookie made here, to keep each test short; test_login covers the real form)."""
    context = browser.new_context(base_url=server_url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    if user is not None:
        client = Client()
        client.force_login(user)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": server_url,
                }
            ]
        )
    return context.new_page()


@pytest.fixture
def admin_page(browser: Any, server_url: str, admin_user: User) -> Iterator[Any]:
    page = new_page(browser, server_url, admin_user)
    yield page
    page.context.close()


@pytest.fixture
def staff_page(browser: Any, server_url: str, staff_user: User) -> Iterator[Any]:
    page = new_page(browser, server_url, staff_user)
    yield page
    page.context.close()


def wait_live(page: Any) -> None:
    """Wait until the page's websocket is open, so no event is missed."""
    page.wait_for_selector('[data-live-state="connected"]', state="attached")


def screenshot(page: Any, name: str) -> None:
    """Save the page at desktop and phone widths under var/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)
