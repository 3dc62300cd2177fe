"""Handlers for the reliability scenarios: each one records what it did, per consumer.

A handler's dotted path names its kind and the consumer it serves, e.g.
``tests.reliability.handlers.once__billing``, so one module serves any flow a
scenario builds (the module's ``__getattr__`` makes them on first use):

- ``effect__<consumer>``: at least once. Works 0–20 ms, then records its effect.
- ``once__<consumer>``: works 0–20 ms, then commits its effect to the database
  under ``@idempotent`` (scoped to the consumer): at most one effect per event.
- ``flaky__<consumer>``: fails every attempt of events marked ``poison`` and the
  first ``fail_times`` attempts of others, then records its effect.

Every call is noted as a delivery ``(event id, consumer, attempt, pid, time)``
in the harness's store (a Redis that the scenario's faults never touch; see
``tests.reliability.harness``), so the report can count what really happened.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import redis
from django.db import connection

from eventflow import conf
from eventflow.events import Event
from eventflow.idempotency import idempotent

Handler = Callable[[Event], None]
_store: dict[str, redis.Redis] = {}


def store() -> redis.Redis:
    """The harness's own Redis: ``EVENTFLOW_HARNESS_REDIS``, else the broker's."""
    url = os.environ.get("EVENTFLOW_HARNESS_REDIS") or conf.get("REDIS_URL")
    if url not in _store:
        _store[url] = redis.Redis.from_url(url, socket_timeout=10)
    return _store[url]


def store_key(name: str) -> str:
    return f"{conf.get('KEY_PREFIX')}harness:{name}"


def note(event: Event, consumer: str, name: str) -> None:
    row = f"{event.id}|{consumer}|{event.attempt}|{os.getpid()}|{time.time():.4f}"
    store().rpush(store_key(name), row)


def work(event: Event, consumer: str) -> None:
    """Take 0–20 ms, as a real handler would (``sleep_ms`` or ``sleep_ms:<consumer>`` in the data decide)."""
    data = event.data if isinstance(event.data, dict) else {}
    milliseconds = data.get(f"sleep_ms:{consumer}", data.get("sleep_ms"))
    time.sleep((random.uniform(0, 20) if milliseconds is None else float(milliseconds)) / 1000)


def _at_least_once(consumer: str) -> Handler:
    def handle(event: Event) -> None:
        note(event, consumer, "deliveries")
        work(event, consumer)
        note(event, consumer, "effects")

    return handle


def _exactly_once(consumer: str) -> Handler:
    @idempotent(scope=f"harness:{consumer}")
    def commit(event: Event) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reliability_effect (scenario, event_id, consumer, attempt, pid)"
                " VALUES (%s, %s, %s, %s, %s)",
                [conf.get("KEY_PREFIX"), event.id, consumer, event.attempt, os.getpid()],
            )

    def handle(event: Event) -> None:
        note(event, consumer, "deliveries")
        work(event, consumer)  # outside the transaction: a stopped worker holds no database lock
        commit(event)

    return handle


def _flaky(consumer: str) -> Handler:
    def handle(event: Event) -> None:
        note(event, consumer, "deliveries")
        data = event.data if isinstance(event.data, dict) else {}
        if data.get("poison"):
            raise RuntimeError(f"poison event {event.id} can never be handled")
        if event.attempt <= int(data.get("fail_times", 0)):
            raise RuntimeError(f"transient failure on attempt {event.attempt}")
        note(event, consumer, "effects")

    return handle


_KINDS: dict[str, Callable[[str], Handler]] = {
    "effect": _at_least_once,
    "once": _exactly_once,
    "flaky": _flaky,
}


def __getattr__(name: str) -> Handler:
    kind, separator, consumer = name.partition("__")
    if not separator or kind not in _KINDS or not consumer:
        raise AttributeError(name)
    handler = _KINDS[kind](consumer)
    handler.__name__ = handler.__qualname__ = name
    globals()[name] = handler
    return handler
