"""Issue 12, item 5: several "hosts" on loopback, deployed the way the README's "Deploying" says.

Two web hosts (``serve --role web``, DEBUG off, each collecting its own static
files) on different ports, two worker hosts (``serve --role workers``), no
separate monitor, against a PostgreSQL database and a Redis of this test's own.
Each host is its own process tree; "killing a host" SIGKILLs the whole tree.

A browser on web A sees live an event published through web B; killing web A
(which holds the monitor's leader key) leaves B serving and hands sampling to
B within seconds; every accepted event is handled.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from dashboard.bench.browser import CHROMIUM_ARGS
from tests.helpers import ROOT, free_port, wait_for
from tests.reliability.harness import RedisServer

pytestmark = pytest.mark.processes

POSTGRES = "postgres://postgres@127.0.0.1:5432"
PREFIX = "mh:"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HANDOVER_SECONDS = 8.0  # the leader key's TTL (3 s) plus a sampler step, with room for a loaded machine
SETUP = """
from django.contrib.auth import get_user_model
from eventflow.models import Consumer, Topic
orders = Topic.objects.create(name="orders")
Consumer.objects.create(name="billing", handler="tests.handlers.billing").topics.add(orders)
get_user_model().objects.create_superuser("operator", password="operator-pass-1")
"""


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL does not answer at 127.0.0.1:5432 ({exc})")
    name = f"ef_webtier_multihost_{uuid.uuid4().hex[:6]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    yield server
    server.stop()


def descendants(pid: int) -> set[int]:
    tree: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            tree[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


class Host:
    """One machine's share of the deployment: ``serve --role ...`` as its own process tree."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *args: str) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.port = free_port() if "web" in args else None
        where = ["--port", str(self.port)] if self.port else []
        command = [sys.executable, "manage.py", "serve", *args, *where]
        env = env | {"STATIC_ROOT": str(log_dir / f"static-{name}")}  # each host collects its own
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_running(self) -> None:
        wait_for(lambda: "running" in self.output() or self.proc.poll() is not None, timeout=120, message=self.name)
        assert self.proc.poll() is None, self.output()

    def pids(self) -> set[int]:
        return {self.proc.pid} | descendants(self.proc.pid)

    def kill(self) -> None:
        """The host loses power: every process of it dies at once."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


class Publisher(threading.Thread):
    """Publishes one event every 50 ms through one web host; keeps the ids of every 202."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stopping.is_set():
                reply = client.post(
                    "/api/v1/topics/orders/events",
                    json={"type": "order.created", "data": {"n": len(self.accepted)}},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                if reply.status_code == 202:
                    self.accepted += reply.json()["ids"]
                else:
                    self.refused.append(f"{reply.status_code} {reply.text[:80]}")
                time.sleep(0.05)


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    run = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def leader_pid(client: redis.Redis) -> int | None:
    holder = client.get(f"{PREFIX}monitor:leader")
    return int(holder.decode().split(":")[1]) if holder else None


def handled(client: redis.Redis) -> set[str]:
    """Ids billing's handler recorded (tests.handlers.billing), on whichever worker host."""
    return {row.decode().split("|")[0] for row in client.lrange(f"{PREFIX}test:billing", 0, -1)}


def publish(url: str, token: str, data: dict) -> str:
    reply = httpx.post(
        f"{url}/api/v1/topics/orders/events",
        json={"type": "order.created", "data": data},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert reply.status_code == 202, reply.text
    return reply.json()["ids"][0]


def test_two_web_and_two_worker_hosts_share_the_flow_and_survive_losing_the_monitors_host(
    database_url, broker, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW"))}
    env |= {"DATABASE_URL": database_url, "REDIS_URL": broker.url, "EVENTFLOW_KEY_PREFIX": PREFIX}
    env |= {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "PYTHONPATH": str(ROOT)}
    env |= {"ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"}
    # The README's steps: migrate once, configure, then start each host's role.
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "shell", stdin=SETUP)
    token = manage(env, "createproducer", "shop", "--topic", "orders").strip().splitlines()[-1]
    client = redis.Redis.from_url(broker.url)
    hosts: list[Host] = []
    try:
        web_a = Host("web-a", env, tmp_path, "--role", "web", "--web-processes", "1")
        hosts.append(web_a)
        web_a.wait_running()
        wait_for(lambda: leader_pid(client) in web_a.pids(), timeout=30, message="web A to take the monitor's lease")
        web_b = Host("web-b", env, tmp_path, "--role", "web", "--web-processes", "1")
        hosts += [web_b] + [Host(f"workers-{n}", env, tmp_path, "--role", "workers", "--workers", "1") for n in (1, 2)]
        for host in hosts[1:]:
            host.wait_running()
        _assert_static_is_production(web_a.url)
        publisher = Publisher(web_b.url, token)
        publisher.start()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            tab_a = _logged_in_tail(browser, web_a.url)
            marker = f"via-b-{time.time_ns()}"
            publish(web_b.url, token, {"marker": marker})
            expect(tab_a.locator("#tail-rows tr", has_text=marker)).to_have_count(1, timeout=15_000)

            sampled_before = float(client.get(f"{PREFIX}monitor:sampled-at"))
            web_a.kill()
            handed = wait_for(
                lambda: leader_pid(client) in web_b.pids(), timeout=HANDOVER_SECONDS, message="web B to take the lease"
            )
            assert handed
            wait_for(lambda: float(client.get(f"{PREFIX}monitor:sampled-at")) > sampled_before + 1, timeout=10)
            assert httpx.get(f"{web_b.url}/api/v1/health", timeout=5).status_code == 200
            tab_b = _logged_in_tail(browser, web_b.url)
            marker = f"after-a-{time.time_ns()}"
            publish(web_b.url, token, {"marker": marker})
            expect(tab_b.locator("#tail-rows tr", has_text=marker)).to_have_count(1, timeout=15_000)
            expect(tab_b.locator("#sampler .banner")).to_have_count(0)
            browser.close()

        publisher.stopping.set()
        publisher.join(10)
        assert publisher.refused == [] and len(publisher.accepted) > 20
        wait_for(lambda: set(publisher.accepted) <= handled(client), timeout=60, message="billing to handle all")
    finally:
        for host in hosts:
            host.stop()
    for host in hosts[1:]:
        assert host.proc.returncode == 0, host.output()


def _logged_in_tail(browser, url: str):
    from playwright.sync_api import expect

    tab = browser.new_context(base_url=url).new_page()
    tab.set_default_timeout(15_000)
    tab.goto("/login/?next=/topics/orders/")
    tab.get_by_label("Username").fill("operator")
    tab.get_by_label("Password").fill("operator-pass-1")
    tab.get_by_role("button", name="Log in").click()
    expect(tab.locator("#conn")).to_have_attribute("data-state", "live")
    return tab


def _assert_static_is_production(url: str) -> None:
    """DEBUG off, the production path: pages link hashed names, served compressed and cached a year."""
    page = httpx.get(f"{url}/login/", timeout=5).text
    linked = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
    assert linked and all(re.search(r"\.[0-9a-f]{12}\.(css|js)$", name) for name in linked), linked
    for name in linked:
        reply = httpx.get(f"{url}{name}", headers={"Accept-Encoding": "gzip"}, timeout=5)
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "max-age=315360000, public, immutable"
