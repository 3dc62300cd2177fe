"""Memory: Redis bytes per retained event beside its payload (process growth: see ``soak``)."""

from __future__ import annotations

from typing import Any

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.publishing import publish_batch

from .publish import sample_events, stored_payloads
from .sandbox import Sandbox
from .table import Figure, Row

ROWS = [
    ("redis_bytes_per_event", "Redis memory per retained event", "× payload", "≤ 2× its payload"),
]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    return [_redis_row(sandbox, plan)]


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
    key, path, unit, target = ROWS[0]
    note = f"{per_event:.0f} B per event for a {payload:.0f} B envelope (MEMORY USAGE of the stream)"
    return Row(key=key, path=path, unit=unit, target=target, figure=figure, met=figure.median <= 2.0, note=note)
