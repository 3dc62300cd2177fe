"""The monitor and the dashboard at scale: 1,000 topics and consumers, 100,000 failed events.

Server time only (Django's test client in this process, a real database and
Redis). Real browsers and many live sockets are measured in ``tabs``.
"""

from __future__ import annotations

import time
from typing import Any

from django.test import Client
from django.utils import timezone

from .sandbox import Sandbox
from .table import Figure, Row

ROWS = [
    ("overview_page", "overview page, 1,000 topics and 1,000 consumers", "ms", "≤ 500 ms"),
    ("monitor_tick", "monitor tick, 1,000 topics and 1,000 consumers", "ms", "≤ 500 ms"),
    ("failed_page", "failed-events page, 100,000 rows", "ms", "≤ 300 ms"),
    ("replay_all", "replay all 10,000 matching failed events", "s", "≤ 10 s, progress shown"),
]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    size = flow_size(plan)
    failed, replayed = (1_000, 100) if plan.quick else (100_000, 10_000)
    runs = max(3, plan.runs)
    user = _staff(sandbox)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    tick, page = _flow_at_scale(sandbox, client, size, runs)
    failed_page, replay_seconds = _failed_at_scale(sandbox, client, user, failed, replayed, runs)
    scale = "" if size == 1_000 else f" (quick: {size} topics and consumers)"
    fscale = "" if failed == 100_000 else f" (quick: {failed:,} rows, {replayed:,} replayed)"
    return [
        _row(0, page, 500.0, scale),
        _row(1, tick, 500.0, scale),
        _row(2, failed_page, 300.0, fscale),
        _row(3, replay_seconds, 10.0, fscale + "; progress: the page reports replayed/skipped counts when done"),
    ]


def _row(index: int, figure: Figure, limit: float, note: str) -> Row:
    key, path, unit, target = ROWS[index]
    return Row(key=key, path=path, unit=unit, target=target, figure=figure, met=figure.median <= limit,
               note=note.strip("; "))  # fmt: skip


def _staff(sandbox: Sandbox) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(sandbox.name("staff"), password=None)


def flow_size(plan: Any) -> int:
    """Topics (and consumers) of the flow at scale: 1,000, or 50 in a quick run."""
    return 50 if plan.quick else 1_000


def declare_flow(sandbox: Sandbox, size: int) -> None:
    """``size`` topics with one consumer each (``t<n>`` and ``c<n>``), the ones not declared yet."""
    from eventflow.models import Topic

    declared = set(Topic.objects.filter(name__startswith=sandbox.name("t")).values_list("name", flat=True))
    for n in range(size):
        if sandbox.name(f"t{n}") not in declared:
            topic = sandbox.topic(f"t{n}")
            sandbox.consumer(f"c{n}", "dashboard.bench.handlers.noop", topic)


def _flow_at_scale(sandbox: Sandbox, client: Client, size: int, runs: int) -> tuple[Figure, Figure]:
    from eventflow import monitor

    declare_flow(sandbox, size)
    watcher = monitor.Monitor()
    ticks, pages = [], []
    for _ in range(runs):
        start = time.perf_counter()
        watcher.step()
        ticks.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        response = client.get("/")
        pages.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"the overview page answered {response.status_code}")
    return Figure.of(ticks), Figure.of(pages)


def _failed_at_scale(
    sandbox: Sandbox, client: Client, user: Any, count: int, replayed: int, runs: int
) -> tuple[Figure, Figure]:
    from eventflow import failures
    from eventflow.models import Consumer, FailedEvent, Topic

    topic = Topic.objects.get(name=sandbox.name("t0"))
    consumer = Consumer.objects.get(name=sandbox.name("c0"))
    other = sandbox.consumer("c-replayed", "dashboard.bench.handlers.noop", topic)
    now = timezone.now()
    rows = [
        FailedEvent(
            consumer=other if n < replayed else consumer, topic=topic, event_id=f"e{n}", stream_id=f"{n + 1}-0",
            event_type="order.created", event={"id": f"e{n}", "type": "order.created", "data": {"n": n}},
            error="RuntimeError: boom", attempts=5, last_failed_at=now,
        )
        for n in range(count)
    ]  # fmt: skip
    FailedEvent.objects.bulk_create(rows, batch_size=2_000)
    pages = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get("/failed/")
        pages.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"the failed-events page answered {response.status_code}")
    matching = FailedEvent.objects.filter(consumer=other, status=FailedEvent.Status.FAILED)
    start = time.perf_counter()
    sent, _problems = failures.replay_many(matching.iterator(chunk_size=500), user)
    seconds = time.perf_counter() - start
    if sent != replayed:
        raise RuntimeError(f"replayed {sent} of {replayed}")
    return Figure.of(pages), Figure.of([seconds])
