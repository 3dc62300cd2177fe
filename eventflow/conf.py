"""Engine settings: every ``EVENTFLOW_*`` knob is read here, at call time.

Values are read on first use and cached; ``override_settings`` clears the cache.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMBEDDED_REDIS": False,
    "DATA_DIR": "var",  # the embedded Valkey's socket and files live under it (relative: to the working directory)
    "KEY_PREFIX": "ef:",
    "SYNC": False,
    "DEDUP_WINDOW": 24 * 3600,
    "MAX_BODY_BYTES": 4 * 1024 * 1024,
    "MAX_BATCH_EVENTS": 1000,
    "BATCH_SIZE": 200,
    "BATCH_SECONDS": 0.5,
    "HEARTBEAT_INTERVAL": 2.0,
    "HEARTBEAT_TTL": 10,
    "SHUTDOWN_GRACE": 10.0,
    "RECLAIM_INTERVAL": 1.0,
    "CONFIG_REFRESH_INTERVAL": 2.0,
    "RETRY_AFTER_SECONDS": 2,
    "TOPIC_CACHE_SECONDS": 1.0,
    "RETENTION_INTERVAL": 5.0,
    "PRODUCER_SOURCE": "python",
    "ALLOW_EVICTING_REDIS": False,  # publish even when Redis's maxmemory-policy may evict (risks accepted events)
    # The monitor (eventflow.monitor)
    "MONITOR_SMOOTH_SECONDS": 5.0,  # headline rates are averaged over this long
    "MONITOR_HEALTH_WINDOW": 60.0,  # seconds of the sliding window behind LAGGING and FAILING
    "MONITOR_HISTORY_SECONDS": 900,  # per-second readings kept per topic
    "MONITOR_HISTORY_MINUTES": 1440,  # per-minute readings kept per topic
    "MONITOR_SNAPSHOT_TTL": 10,  # seconds a stored snapshot counts as current
    "MONITOR_PIPELINE_CHUNK": 1000,  # commands per pipelined round trip
    "MONITOR_SPARK_POINTS": 60,
    "MONITOR_BROKER_EVERY": 10.0,  # seconds between reads of the server's durability mode
    # /metrics (eventflow.metrics): who may scrape without a token, and the token for everyone else
    "METRICS_ALLOW": ("127.0.0.1", "::1"),  # addresses or networks (CIDR)
    "METRICS_TOKEN": "",  # empty: no token accepted
    "MONITOR_LEADER_TTL": 3,  # seconds a dead leader holds the key: a standby samples within this
    "MONITOR": "auto",  # where the monitor runs: "auto" (in every web process, one elected) or "off"
}


_cache: dict[str, Any] = {}


def get(name: str) -> Any:
    """Return ``settings.EVENTFLOW_<name>``, or the engine default.

    Values are cached (the publish path reads several per event); changing a
    setting through Django's ``override_settings`` or pytest-django's
    ``settings`` clears the cache, so tests still see their overrides.
    """
    try:
        return _cache[name]
    except KeyError:
        value = _cache[name] = getattr(settings, f"EVENTFLOW_{name}", DEFAULTS[name])
        return value


@receiver(setting_changed, dispatch_uid="eventflow-conf-cache")
def _forget(**kwargs: Any) -> None:
    _cache.clear()
