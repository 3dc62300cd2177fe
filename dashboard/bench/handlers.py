"""Handlers the benchmark's consumers run (in real worker processes)."""

from __future__ import annotations

import time

from eventflow import conf
from eventflow.connection import get_redis
from eventflow.events import Event
from eventflow.publishing import publish

ONWARD = "-onward"  # publish_onward's target: the handled event's topic, with this after its name

_latencies: list[float] = []
_flushed_at = 0.0


def key(name: str) -> str:
    """A benchmark-only key, under the run's prefix (so the run's cleanup removes it)."""
    return f"{conf.get('KEY_PREFIX')}bench:{name}"


def noop(event: Event) -> None:
    """Does nothing: what is measured is the broker around it."""


def publish_onward(event: Event) -> None:
    """Publish one event onward, to ``<topic>-onward``: it inherits the handled event's cause and trace, if any."""
    publish(f"{event.topic}{ONWARD}", event.data, type=event.type)


def record_latency(event: Event) -> None:
    """Note publish→handler time from ``data["t"]`` (wall clock); push the notes in batches."""
    global _flushed_at
    data = event.data
    if "t" in data:
        _latencies.append(time.time() - data["t"])
    now = time.monotonic()
    if _latencies and (data.get("flush") or len(_latencies) >= 500 or now - _flushed_at > 0.2):
        get_redis().rpush(key("latency"), *_latencies)
        _latencies.clear()
        _flushed_at = now
