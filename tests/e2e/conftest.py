"""Browser tests: Debian's Chromium, driven by Playwright, against real processes.

The web server (daphne), the workers and the monitor run as subprocesses on
the test's own Redis key prefix and database file, exactly as in production.
These tests only run when asked for by path, in their own pytest invocation
(Playwright's sync API and asyncio tests do not share one):

    python -m pytest tests/e2e
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.bench.browser import CHROMIUM_ARGS  # one list of the flags Chromium runs with here
from tests.helpers import ROOT, process_env

E2E_DIR = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("EVENTFLOW_SCREENSHOTS", ROOT / "var" / "screenshots"))  # gitignored
# Reported to the page by the browser itself; the page fixture fails a test on any of them.
CSP_PROBE = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});"""


@pytest.fixture(autouse=True, scope="session")
def allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop in this thread; the ORM calls the
    tests make between browser steps are still plain synchronous calls."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect browser tests only when the invocation names tests/e2e (or EVENTFLOW_E2E=1)."""
    if os.environ.get("EVENTFLOW_E2E") == "1":
        return None
    asked = any(Path(arg.split("::")[0]).resolve().is_relative_to(E2E_DIR) for arg in config.args)
    return None if asked else True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A child process of the test, stopped at teardown whatever happens."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args, self.env = args, env
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = open(f"/tmp/eventflow-e2e-{Path(self.args[-1]).name}-{os.getpid()}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Server(Process):
    """daphne serving the project (static files included) on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = "dashboard.management.asgi_static:application"
        super().__init__([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(self.port), app], env)

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/login/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 20 s")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def env(transactional_db, redis_url: str, key_prefix: str) -> dict[str, str]:
    return process_env(redis_url, key_prefix)


@pytest.fixture
def server(env) -> Iterator[Server]:
    web = Server(env)
    yield web
    web.stop()


@pytest.fixture
def monitor_process(env) -> Iterator[Process]:
    proc = Process([sys.executable, str(ROOT / "manage.py"), "monitor"], env)
    yield proc
    proc.stop()


class BrowserErrors:
    """Console errors, uncaught exceptions and CSP violations of one tab, as they happen."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.tolerated: list[re.Pattern] = []

    def watch(self, tab) -> None:
        tab.add_init_script(CSP_PROBE)
        tab.on("console", lambda m: self._console(m))
        tab.on("pageerror", lambda e: self.seen.append(f"exception: {e}"))
        tab.on("response", lambda r: self.seen.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def _console(self, message) -> None:
        if message.type == "error":
            self.seen.append(f"console: {message.text} at {message.location.get('url')}")

    def tolerate(self, pattern: str) -> None:
        """Expect errors like this one (a test that stops the server on purpose)."""
        self.tolerated.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [m for m in self.seen if not any(p.search(m) for p in self.tolerated)]


@pytest.fixture
def browser_errors() -> BrowserErrors:
    return BrowserErrors()


@pytest.fixture
def page(browser, server, staff_user, browser_errors) -> Iterator:
    """A logged-out tab on the test's server; the test fails on any console error or CSP violation in it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    browser_errors.watch(tab)
    yield tab
    context.close()
    assert browser_errors.unexpected() == [], "the browser reported errors"


def log_in(page, next_path: str = "/") -> None:
    from playwright.sync_api import expect

    page.goto(next_path)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("operator-pass-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
