"""Delivery through real worker processes (``manage.py runconsumers``), beside a raw drain.

Throughput: the topic is filled first, then the workers start; the rate is
counted from the first ack to the last, so process start-up is left out. The
workers' CPU time over the same span is kept too (``last_cpu_per_event``): on
a shared machine it moves less than the rate.
"""

from __future__ import annotations

import time
from typing import Any

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.publishing import publish_batch

from . import limits, procstat
from .publish import sample_events
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

NOOP = "dashboard.bench.handlers.noop"


def _fill(topic: str, count: int, events: list[dict[str, Any]] | None = None) -> None:
    events = sample_events(count) if events is None else events
    for offset in range(0, count, 500):
        publish_batch(topic, events[offset : offset + 500])


def _acked(topic: str, consumer: str) -> int:
    return int(get_redis().hget(keys.counters(topic), f"acked:{consumer}") or 0)


def eventflow_rate(
    sandbox: Sandbox,
    count: int,
    workers: int,
    label: str,
    events: list[dict[str, Any]] | None = None,
    handler: str = NOOP,
) -> float:
    """Events/s that ``workers`` worker processes deliver to ``handler`` (``events``: the sample ones)."""
    topic = sandbox.topic(label)
    consumer = sandbox.consumer(label, handler, topic)
    _fill(topic.name, count, events)
    procs = [sandbox.manage("runconsumers", "--consumer", consumer.name) for _ in range(workers)]
    try:
        if not wait_until(lambda: _acked(topic.name, consumer.name) > 0, timeout=60):
            raise RuntimeError("the worker processes acked nothing within 60 s")
        t1, a1, cpu1 = time.perf_counter(), _acked(topic.name, consumer.name), _cpu_seconds(procs)
        if not wait_until(lambda: _acked(topic.name, consumer.name) >= count, timeout=120, interval=0.002):
            raise RuntimeError(f"the workers acked only {_acked(topic.name, consumer.name)} of {count}")
        rate = (count - a1) / (time.perf_counter() - t1)
        sandbox.last_cpu_per_event = (_cpu_seconds(procs) - cpu1) / (count - a1)
    finally:
        for proc in procs:
            sandbox.stop(proc)
    raw = limits.drain(get_redis(), keys.stream(topic.name), "raw-drain", count, 200)
    get_redis().unlink(keys.stream(topic.name))
    sandbox.last_raw_drain = raw
    return rate


def _cpu_seconds(procs: list[Any]) -> float:
    return sum(procstat.cpu_seconds(proc.pid) for proc in procs)


def raw_and_eventflow(sandbox: Sandbox, count: int, runs: int) -> tuple[Figure, Figure]:
    """EventFlow with one worker process, and the raw drain over the same events."""
    ours, raw = [], []
    for n in range(runs):
        ours.append(eventflow_rate(sandbox, count, 1, f"deliver{n}"))
        raw.append(sandbox.last_raw_drain)
    return Figure.of(ours), Figure.of(raw)


def scaling(sandbox: Sandbox, count: int, runs: int, counts: tuple[int, ...]) -> dict[int, Figure]:
    return {
        workers: Figure.of([eventflow_rate(sandbox, count, workers, f"scale{workers}w{n}") for n in range(runs)])
        for workers in counts
    }


ROWS = [
    ("delivery", "delivery, no-op handler, one worker process", "ev/s", "≥ 100k ev/s and ≥ 40 % of the raw drain"),
]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    ours, raw = raw_and_eventflow(sandbox, plan.delivery_events, plan.runs)
    sandbox.context["delivery"] = ours
    share = ratio(ours, raw)
    rows = [
        Row(
            key="delivery",
            path=ROWS[0][1],
            unit="ev/s",
            target=ROWS[0][3],
            figure=ours,
            limit=raw,
            limit_label="XREADGROUP+XACK pipelined, JSON decode",
            ratio=share,
            met=ours.median >= 100_000 and share is not None and share >= 0.40,
        ),
    ]
    if len(plan.worker_counts) > 1:
        runs = max(1, plan.runs // 2)
        for workers, figure in scaling(sandbox, plan.delivery_events, runs, plan.worker_counts[1:]).items():
            rows.append(
                Row(
                    key=f"delivery_{workers}w",
                    path=f"delivery, {workers} worker processes (scale-out)",
                    unit="ev/s",
                    target="scaling vs 1 process (2 cores)",
                    figure=figure,
                    limit=ours,
                    limit_label="1 worker process",
                    ratio=ratio(figure, ours),
                )
            )
    return rows
