"""Memory: Redis bytes per retained event beside its payload, and worker growth under load."""

from __future__ import annotations

import time
from typing import Any

from .. import keys
from ..connection import get_redis
from ..publishing import publish_batch
from .publish import sample_events, stored_payloads
from .sandbox import Sandbox
from .table import Figure, Row

ROWS = [
    ("memory_web", "memory, web process under load", "%", "grows < 10 % over 10 min"),
    ("memory_worker", "memory, worker process under load", "%", "grows < 10 % over 10 min"),
    ("redis_bytes_per_event", "Redis memory per retained event", "× payload", "≤ 2× its payload"),
]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    return [_web_row(sandbox), _worker_row(sandbox, plan), _redis_row(sandbox, plan)]


def _redis_row(sandbox: Sandbox, plan: Any) -> Row:
    count = 2_000 if plan.quick else 50_000
    topic = sandbox.topic("memory").name
    events = sample_events(count)
    for offset in range(0, count, 500):
        publish_batch(topic, events[offset : offset + 500])
    client = get_redis()
    used = client.memory_usage(keys.stream(topic), samples=0) or 0
    payload = sum(len(p) for p in stored_payloads(events, topic)) / count
    per_event = used / count
    client.unlink(keys.stream(topic))
    figure = Figure.of([per_event / payload])
    key, path, unit, target = ROWS[2]
    note = f"{per_event:.0f} B per event for a {payload:.0f} B envelope (MEMORY USAGE of the stream)"
    return Row(key=key, path=path, unit=unit, target=target, figure=figure, met=figure.median <= 2.0, note=note)


def _worker_row(sandbox: Sandbox, plan: Any) -> Row:
    """RSS of one worker process delivering a steady stream, first to last sample."""
    topic = sandbox.topic("soak")
    consumer = sandbox.consumer("soak", "eventflow.bench.handlers.noop", topic)
    proc = sandbox.manage("runconsumers", "--consumer", consumer.name)
    events = sample_events(100)
    samples: list[int] = []
    deadline = time.monotonic() + plan.soak_seconds
    warm = time.monotonic() + min(5.0, plan.soak_seconds / 4)
    try:
        while time.monotonic() < deadline:
            publish_batch(topic.name, events)
            time.sleep(0.02)
            if time.monotonic() >= warm:
                samples.append(_rss(proc.pid))
    finally:
        sandbox.stop(proc)
    key, path, unit, target = ROWS[1]
    if len(samples) < 2 or not samples[0]:
        return Row(key=key, path=path, unit=unit, target=target, not_measured="too short a soak to sample")
    growth = 100.0 * (samples[-1] - samples[0]) / samples[0]
    window = f"{plan.soak_seconds:.0f} s soak at ≈ 5,000 ev/s, not 10 min"
    return Row(key=key, path=path, unit=unit, target=target, figure=Figure.of([growth]), met=None,
               note=f"{window}: {samples[0] / 1e6:.0f} → {samples[-1] / 1e6:.0f} MB RSS")  # fmt: skip


def _web_row(sandbox: Sandbox) -> Row:
    key, path, unit, target = ROWS[0]
    return Row(key=key, path=path, unit=unit, target=target,
               not_measured="the 10-minute web soak is not part of this run; see the worker row")  # fmt: skip


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    except OSError:
        return 0
