"""Which dependency is down: the banner every dashboard page shows, asked of the dependencies themselves.

Each page render (and the banner's poll, every 10 s) asks the database
(``SELECT 1``) and Redis (``INFO memory``: reachable, eviction policy, memory
use) now, rather than trusting the monitor's snapshot, which is stored in
Redis and is as old as the last sample. What it finds is said in the same
words whether the page rendered or failed because of it (``views.security``).
"""

from __future__ import annotations

import redis

from eventflow.connection import get_redis
from eventflow.database import database_status
from eventflow.health import BrokerProblem, memory_problems
from eventflow.status import memory_status

DATABASE_DOWN, REDIS_DOWN = "database_down", "redis_down"


def problems() -> list[BrokerProblem]:
    """What is down, full or unsafe now: the database, Redis, Redis's eviction policy or memory."""
    found = []
    status, error = database_status()
    if status != "ok":
        found.append(
            BrokerProblem(
                "error",
                DATABASE_DOWN,
                f"The database is unavailable ({error}). Sign-in, configuration and failed events need it; "
                "accepted events wait in Redis and dead letters are kept there until it is back.",
            )
        )
    try:
        memory = memory_status(get_redis())
    except redis.RedisError as exc:
        found.append(
            BrokerProblem(
                "error",
                REDIS_DOWN,
                f"Redis is unreachable ({type(exc).__name__}: {exc}). Publishing answers 503, workers wait, "
                "and rates, health and the live tail stop until it is back.",
            )
        )
    else:
        found += memory_problems(memory["policy"], memory["used"], memory["max"])
    return found


def failed_just_now(exc: Exception) -> BrokerProblem:
    """What a page met, when both answer again by the time they are asked."""
    if isinstance(exc, redis.RedisError):
        return BrokerProblem("error", REDIS_DOWN, f"Redis failed while this page was read ({type(exc).__name__}).")
    return BrokerProblem(
        "error", DATABASE_DOWN, f"The database failed while this page was read ({type(exc).__name__})."
    )


def redis_down(found: list[BrokerProblem]) -> bool:
    return any(p.code == REDIS_DOWN for p in found)
