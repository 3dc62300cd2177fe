"""Handlers the benchmark's consumers run (in real worker processes)."""

from __future__ import annotations

import time

from eventflow import conf, tracing
from eventflow.connection import get_redis
from eventflow.events import Event

_latencies: list[float] = []
_flushed_at = 0.0


def key(name: str) -> str:
    """A benchmark-only key, under the run's prefix (so the run's cleanup removes it)."""
    return f"{conf.get('KEY_PREFIX')}bench:{name}"


def noop(event: Event) -> None:
    """Does nothing: what is measured is the broker around it."""


def inherit_trace(event: Event) -> None:
    """Work out what an event this handler published would inherit (its cause, a child traceparent), unsent."""
    if tracing.TRACEPARENT not in tracing.inherit([{}])[0]:  # a traced event whose trace got lost: fail loudly
        raise RuntimeError(f"event {event.id} handed its handler no trace context")


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
