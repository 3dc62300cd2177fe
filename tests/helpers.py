"""Helpers the tests share: paths, polling, processes, and the named flow's building blocks.

Fixtures live in ``conftest.py``; plain functions that tests import live here,
so that no test imports a conftest as if it were a module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from eventflow import delivery
from eventflow.connection import get_redis

ROOT = Path(__file__).resolve().parent.parent


def make_consumer(name: str, handler: str, *topics, **options):
    from eventflow.models import Consumer

    consumer = Consumer.objects.create(name=name, handler=handler, **options)
    consumer.topics.add(*topics)
    return consumer


def process_env(redis_url: str, key_prefix: str) -> dict[str, str]:
    """Environment for a child process that shares this test's Redis namespace and database."""
    from django.db import connection as db_connection

    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env["EVENTFLOW_KEY_PREFIX"] = key_prefix
    env["PYTHONPATH"] = str(ROOT)
    settings_dict = db_connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    else:
        user = settings_dict.get("USER") or ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    return env


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll until ``condition()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drain(worker, until=lambda: True, timeout: float = 15.0) -> None:
    """Step an in-process worker until it finds no work and ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.run_once() and until():
            return
        time.sleep(0.01)
    raise AssertionError("the worker did not drain in time")


def publish_status(client, token: str, topic: str = "orders") -> int:
    """Publish one minimal event over the API with ``token``; return the status code."""
    response = client.post(
        f"/api/v1/topics/{topic}/events",
        b'{"type": "order.created"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


# --- stepping a consumer by hand ------------------------------------------------


def subscribe(*consumers) -> None:
    """Create the consumer groups a worker would create when it starts."""
    for consumer in consumers:
        for topic in consumer.topics.all():
            delivery.ensure_group(get_redis(), topic.name, consumer.name)


def take(topic: str, consumer: str, count: int = 1, worker: str = "w1") -> list:
    """Read events for a consumer without acking them, like a hanging worker."""
    return delivery.read_new(get_redis(), consumer, worker, (topic,), count, None)


def consumer_state(snapshot: dict, name: str) -> dict:
    return next(c for c in snapshot["consumers"] if c["name"] == name)
