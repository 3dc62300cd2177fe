"""The Celery 5 peer: a no-op task on the Redis broker (benchmark-only; see .ci/requirements-bench.txt).

Configured from the environment the benchmark sets for its worker process:
``CELERY_BROKER_URL``, ``EVENTFLOW_BENCH_QUEUE`` and ``EVENTFLOW_BENCH_KEY``
(where marks and latencies go).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

app = Celery("eventflow-bench", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=os.environ.get("EVENTFLOW_BENCH_QUEUE", "eventflow-bench"),
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=64,
)
_latencies: list[float] = []
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["EVENTFLOW_BENCH_REDIS"])
    return _client


@app.task(name="bench.noop")
def noop(mark: str = "") -> None:
    """Nothing, except that the first and last tasks of a run note the time."""
    if mark:
        _redis().set(f"{os.environ['EVENTFLOW_BENCH_KEY']}:{mark}", time.time())


@app.task(name="bench.timed")
def timed(sent_at: float, flush: bool = False) -> None:
    """Note publish→execution time; push the notes in batches."""
    if sent_at:
        _latencies.append(time.time() - sent_at)
    if _latencies and (flush or len(_latencies) >= 200):
        _redis().rpush(f"{os.environ['EVENTFLOW_BENCH_KEY']}:latency", *_latencies)
        _latencies.clear()
