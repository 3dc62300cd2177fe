"""System checks for settings that would otherwise fail at 3 a.m."""

from __future__ import annotations

from django.conf import settings
import redis
from django.core.checks import Error, Warning, register

from . import conf


@register()
def check_settings(app_configs, **kwargs) -> list:
    problems = []
    url = conf.get("REDIS_URL")
    schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
    if not url.startswith(schemes):
        problems.append(Error(f"REDIS_URL {url!r} must start with one of {', '.join(schemes)}", id="eventflow.E001"))
    if conf.get("MAX_BATCH_EVENTS") < 1 or conf.get("MAX_BODY_BYTES") < 1024:
        problems.append(
            Error("EVENTFLOW_MAX_BATCH_EVENTS must be ≥ 1 and EVENTFLOW_MAX_BODY_BYTES ≥ 1024", id="eventflow.E002")
        )
    if not conf.get("EMBEDDED_REDIS") and not hasattr(settings, "EVENTFLOW_REDIS_URL"):
        # Connecting to a default server nobody configured would hide the mistake until events go missing.
        problems.append(
            Error(
                "EVENTFLOW_REDIS_URL is not set",
                hint="Name the Redis that carries the streams, e.g. EVENTFLOW_REDIS_URL = 'redis://127.0.0.1:6379/0'.",
                id="eventflow.E003",
            )
        )
    if conf.get("SYNC") and not settings.DEBUG:
        problems.append(
            Warning("EVENTFLOW_SYNC runs handlers inside publish; it is meant for tests", id="eventflow.W001")
        )
    return problems


@register()
def check_redis_memory(app_configs, **kwargs) -> list:
    """Refuse loudly, at every start and in ``check --deploy``, a Redis that may evict.

    Silent when Redis cannot be reached (health and the dashboard say so at
    run time) and for the embedded server, which keeps Redis's defaults (no
    maxmemory, ``noeviction``).
    """
    if conf.get("EMBEDDED_REDIS"):
        return []
    from .connection import get_redis
    from .health import memory_problems
    from .status import memory_status

    try:
        memory = memory_status(get_redis())
    except (redis.RedisError, OSError):
        return []
    found = memory_problems(memory["policy"], memory["used"], memory["max"])
    return [_MESSAGE[p.level](p.message, id=_CHECK_IDS[p.code]) for p in found]


_MESSAGE = {"error": Error, "warning": Warning}
_CHECK_IDS = {
    "redis_evicting": "eventflow.E010",
    "redis_memory_high": "eventflow.W010",
    "redis_policy_unknown": "eventflow.W011",
}
