"""Celery 5 beside EventFlow: end-to-end tasks/s with a no-op task, and publish→execution latency.

The Celery worker is one process with the solo pool (like one EventFlow
worker process), on the same Redis. Celery is a benchmark-only dependency:
without it these rows say how to install it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from eventflow.connection import get_redis

from .latency import paced, percentile
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

ROWS = [
    ("delivery_vs_celery", "delivery vs Celery 5, no-op, one worker process", "ev/s", "≥ 30× Celery"),
    ("latency_celery", "Celery 5 publish → execution p99 at 1,000 tasks/s (peer)", "ms", "reference only"),
]
INSTALL = "Celery is not installed: pip install -r .ci/requirements-bench.txt"


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    try:
        import celery  # noqa: F401
    except ImportError:
        return [Row(key=k, path=p, unit=u, target=t, not_measured=INSTALL) for k, p, u, t in ROWS]
    app = _configure(sandbox)
    rate_figure = Figure.of([_throughput(sandbox, app, 500 if plan.quick else 10_000) for _ in range(1)])
    celery_rate = 200.0 if plan.quick else 1_000.0
    p99 = _latency(sandbox, app, celery_rate, plan.latency_seconds)
    queue = f"{sandbox.prefix}celery"  # kombu keeps its bindings outside our prefix
    get_redis().unlink(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    sandbox.context["celery_drain"] = rate_figure
    ours = sandbox.context.get("delivery")
    peer_path = ROWS[1][1].replace("1,000", f"{celery_rate:,.0f}")
    r = ratio(ours, rate_figure)
    return [
        Row(key="delivery_vs_celery", path=ROWS[0][1], unit="ev/s", target=ROWS[0][3], figure=ours,
            limit=rate_figure, limit_label="Celery tasks/s", ratio=r, met=r is not None and r >= 30),
        Row(key="latency_celery", path=peer_path, unit="ms", target=ROWS[1][3], figure=Figure.of([p99 * 1000]),
            note="Celery worker: --pool solo, prefetch 64, no result backend"),
    ]  # fmt: skip


def _broker_url(url: str) -> str:
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


def _env(sandbox: Sandbox) -> dict[str, str]:
    return {
        "CELERY_BROKER_URL": _broker_url(sandbox.redis_url),
        "EVENTFLOW_BENCH_QUEUE": f"{sandbox.prefix}celery",
        "EVENTFLOW_BENCH_KEY": f"{sandbox.prefix}celery-bench",
        "EVENTFLOW_BENCH_REDIS": sandbox.redis_url,
    }


def _configure(sandbox: Sandbox) -> Any:
    os.environ.update(_env(sandbox))
    from .celery_app import app

    app.conf.broker_url = _broker_url(sandbox.redis_url)
    app.conf.task_default_queue = f"{sandbox.prefix}celery"
    return app


def _worker(sandbox: Sandbox) -> Any:
    args = [sys.executable, "-m", "celery", "-A", "dashboard.bench.celery_app", "worker", "--pool", "solo",
            "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"]  # fmt: skip
    return sandbox.spawn(args, **_env(sandbox))


def _throughput(sandbox: Sandbox, app: Any, count: int) -> float:
    """Tasks/s from the first task's start to the last one's, the queue filled first."""
    mark = f"{sandbox.prefix}celery-bench"
    noop = app.tasks["bench.noop"]
    noop.apply_async(("first",))
    for _ in range(count - 2):
        noop.apply_async()
    noop.apply_async(("last",))
    proc = _worker(sandbox)
    try:
        client = get_redis()
        if not wait_until(lambda: client.exists(f"{mark}:last"), timeout=120, interval=0.01):
            raise RuntimeError("the Celery worker did not finish within 120 s")
        first, last = float(client.get(f"{mark}:first")), float(client.get(f"{mark}:last"))
    finally:
        sandbox.stop(proc)
    return (count - 1) / (last - first)


def _latency(sandbox: Sandbox, app: Any, rate: float, seconds: float) -> float:
    key = f"{sandbox.prefix}celery-bench:latency"
    timed = app.tasks["bench.timed"]
    proc = _worker(sandbox)
    client = get_redis()
    try:
        timed.apply_async((0.0, True))
        timed.apply_async((time.time(), True))
        if not wait_until(lambda: client.llen(key) > 0, timeout=60, interval=0.02):
            raise RuntimeError("the Celery worker did not start within 60 s")
        client.unlink(key)
        achieved = paced(rate, seconds, lambda i: timed.apply_async((time.time(),)))
        timed.apply_async((time.time(), True))
        expected = int(rate * seconds) + 1
        wait_until(lambda: client.llen(key) >= expected, timeout=30, interval=0.02)
        values = sorted(float(v) for v in client.lrange(key, 0, -1))
    finally:
        sandbox.stop(proc)
    del achieved
    return percentile(values, 99)
