"""Fixtures for dashboard tests: a logged-in operator and a monitor to step."""

from __future__ import annotations

import pytest

from eventflow import delivery
from eventflow.connection import get_redis
from eventflow.monitor import Monitor


@pytest.fixture
def operator(client, staff_user):
    """A browser session of a staff user who may replay and discard."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def monitor(key_prefix) -> Monitor:
    return Monitor(flow_refresh=0.0)


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
