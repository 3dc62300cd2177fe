"""Fixtures of the reliability scenarios: a scenario, its processes, its own Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from eventflow import connection, topics
from eventflow.models import Consumer, Producer, Topic
from tests.reliability.harness import Fleet, RedisServer, Subscriber, ensure_effects_table, fleet_env


@pytest.fixture
def scenario(transactional_db, key_prefix: str, redis_url: str, monkeypatch) -> str:
    """This test's scenario id (its key prefix); the harness records into ``redis_url``."""
    monkeypatch.setenv("EVENTFLOW_HARNESS_REDIS", redis_url)
    ensure_effects_table()
    return key_prefix


@pytest.fixture
def fleet(scenario: str, redis_url: str, request) -> Iterator[Callable[..., Fleet]]:
    """Make a ``Fleet`` whose processes use the given broker Redis (default: the session's)."""
    made: list[Fleet] = []

    def make(broker_url: str | None = None, **env: str) -> Fleet:
        made.append(Fleet(fleet_env(broker_url or redis_url, scenario, redis_url, **env)))
        return made[-1]

    yield make
    failed = getattr(request.node, "call_failed", False)
    for one in made:
        one.stop()
        if failed:
            print(one.tail())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.call_failed = True  # the fleet fixture prints its processes' logs
    return report


@pytest.fixture
def own_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start Redis servers this test owns (and kills); all are stopped at the end."""
    servers: list[RedisServer] = []

    def start(*, appendonly: bool, fsync: str = "everysec", extra: tuple[str, ...] = ()) -> RedisServer:
        servers.append(RedisServer(appendonly=appendonly, fsync=fsync, extra=extra).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def use_broker(settings, url: str) -> None:
    """Point this (test) process at another Redis."""
    settings.EVENTFLOW_REDIS_URL = url
    connection.reset()
    topics.clear_cache()


def build_flow(subscribers: list[Subscriber], **consumer_options) -> str:
    """Create the subscribers' topics and consumers, and a producer for every topic; return its token."""
    names = sorted({t for s in subscribers for t in s.topics})
    by_name = {name: Topic.objects.get_or_create(name=name)[0] for name in names}
    for s in subscribers:
        consumer = Consumer.objects.create(name=s.name, handler=s.handler, **consumer_options)
        consumer.topics.add(*(by_name[t] for t in s.topics))
    producer = Producer(name="harness")
    token = producer.set_new_token()
    producer.save()
    producer.topics.add(*by_name.values())
    return token
