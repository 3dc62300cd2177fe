"""The Dramatiq peer: a no-op actor on the Redis broker (benchmark-only; see .ci/requirements-bench.txt).

Configured from the environment the benchmark sets for its worker process:
``DRAMATIQ_REDIS_URL``, ``EVENTFLOW_BENCH_QUEUE`` (the broker's namespace) and
``EVENTFLOW_BENCH_KEY`` (where the first and last messages note their time).
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(
    url=os.environ.get("DRAMATIQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
    namespace=os.environ.get("EVENTFLOW_BENCH_QUEUE", "eventflow-bench-dramatiq"),
)
dramatiq.set_broker(broker)
_client: redis.Redis | None = None


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop(mark: str = "") -> None:
    """Nothing, except that the first and last messages of a run note the time."""
    global _client
    if mark:
        _client = _client or redis.Redis.from_url(os.environ["DRAMATIQ_REDIS_URL"])
        _client.set(f"{os.environ['EVENTFLOW_BENCH_KEY']}:{mark}", time.time())
