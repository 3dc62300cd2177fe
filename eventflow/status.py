"""What the broker itself looks like: reachable, which server, how durable."""

from __future__ import annotations

from typing import Any

import redis

from .connection import get_redis


def durability(info: dict[str, Any], config: dict[str, Any]) -> str:
    """Name the server's persistence: ``none``, ``everysec``, ``always`` (AOF) or ``snapshots`` (RDB only)."""
    if str(config.get("appendonly", "no")).lower() == "yes":
        return str(config.get("appendfsync", "everysec")).lower()
    if config.get("save"):
        return "snapshots"
    return "none"


def broker_status(client: redis.Redis | None = None) -> dict[str, Any]:
    """Return a small, safe-to-publish summary of the Redis server EventFlow uses."""
    client = client or get_redis()
    try:
        info = client.info("server")
        config = {}
        for name in ("appendonly", "appendfsync", "save"):
            try:
                config.update(client.config_get(name))
            except redis.ResponseError:  # managed servers may forbid CONFIG
                config[name] = None
    except redis.RedisError as exc:
        return {"reachable": False, "error": type(exc).__name__}
    return {
        "reachable": True,
        "server": "valkey" if "valkey_version" in info else "redis",
        "version": info.get("valkey_version") or info.get("redis_version"),
        "durability": durability(info, config) if config.get("appendonly") is not None else "unknown",
        "uptime_seconds": info.get("uptime_in_seconds"),
    }
