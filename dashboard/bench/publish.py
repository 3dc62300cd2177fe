"""Python publishing beside pipelined and one-round-trip XADD."""

from __future__ import annotations

from typing import Any

import orjson

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.publishing import publish, publish_batch
from eventflow.validation import new_event_id, now_rfc3339

from . import limits
from .sandbox import Sandbox
from .table import Figure, Row, ratio

BATCH = 100


def sample_events(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "order.created", "data": {"order": i, "amount": 19.5, "currency": "EUR", "items": ["sku-1", "sku-2"]}}
        for i in range(count)
    ]


def stored_payloads(events: list[dict[str, Any]], topic: str) -> list[bytes]:
    """What EventFlow would store for these events: the raw programs write the same bytes."""
    envelope = {"specversion": "1.0", "source": "python", "topic": topic}
    return [orjson.dumps({**e, **envelope, "id": new_event_id(), "time": now_rfc3339()}) for e in events]


ROWS = [
    ("python_publish_batch", f"Python publish_batch, {BATCH} events per call", "ev/s", "≥ 70 % of pipelined XADD"),
    ("python_publish_single", "Python publish, one event at a time", "ev/s", "≥ 70 % of one-round-trip XADD"),
]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    topic = sandbox.topic("publish").name
    quick = plan.quick
    runs = 2 if quick else plan.runs
    singles, batches = (300, 2_000) if quick else (5_000, 50_000)
    single, single_limit = _interleaved(
        runs, lambda: eventflow_single(topic, singles), lambda: _raw_single(topic, singles)
    )
    batch, batch_limit = _interleaved(
        runs, lambda: eventflow_batch(topic, batches), lambda: _raw_batch(topic, batches)
    )
    return [
        _row(
            "python_publish_batch",
            f"Python publish_batch, {BATCH} events per call",
            batch,
            batch_limit,
            "pipelined XADD",
            0.70,
        ),
        _row(
            "python_publish_single",
            "Python publish, one event at a time",
            single,
            single_limit,
            "one-round-trip XADD",
            0.70,
        ),
    ]


def _row(key: str, path: str, figure: Figure, limit: Figure, label: str, share: float) -> Row:
    r = ratio(figure, limit)
    return Row(
        key=key,
        path=path,
        unit="ev/s",
        target=f"≥ {share:.0%} of {label}",
        figure=figure,
        limit=limit,
        limit_label=label,
        ratio=r,
        met=r is not None and r >= share,
    )


def _interleaved(runs: int, ours: Any, theirs: Any) -> tuple[Figure, Figure]:
    """Alternate the two measurements so that noise hits both alike."""
    a, b = [], []
    for _ in range(runs):
        a.append(ours())
        b.append(theirs())
    return Figure.of(a), Figure.of(b)


def _clean(topic: str) -> None:
    get_redis().unlink(keys.stream(topic))


def eventflow_single(topic: str, count: int) -> float:
    """Events/s through Python ``publish``, one at a time."""
    import time

    events = sample_events(count)
    start = time.perf_counter()
    for event in events:
        publish(topic, event["data"], type=event["type"])
    rate = count / (time.perf_counter() - start)
    _clean(topic)
    return rate


def eventflow_batch(topic: str, count: int) -> float:
    """Events/s through ``publish_batch``, ``BATCH`` events per call."""
    import time

    events = sample_events(count)
    chunks = [events[i : i + BATCH] for i in range(0, count, BATCH)]
    start = time.perf_counter()
    for chunk in chunks:
        publish_batch(topic, chunk)
    rate = count / (time.perf_counter() - start)
    _clean(topic)
    return rate


def _raw_single(topic: str, count: int) -> float:
    payloads = stored_payloads(sample_events(count), topic)
    rate = limits.one_round_trip_xadd(get_redis(), keys.stream(topic), payloads)
    _clean(topic)
    return rate


def _raw_batch(topic: str, count: int) -> float:
    payloads = stored_payloads(sample_events(count), topic)
    rate = limits.pipelined_xadd(get_redis(), keys.stream(topic), payloads, BATCH)
    _clean(topic)
    return rate
