"""What the broker itself looks like: reachable, which server, how durable, whether it may evict."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import redis
import redis.asyncio

from . import conf
from .connection import acall, get_async_redis, get_redis
from .errors import RedisEvicting
from .health import SAFE_POLICY, memory_problems

# How long a process trusts what it last read of the eviction policy (publishing checks it).
POLICY_CHECK_SECONDS = 10.0
_policies: dict[str, tuple[float, str | None]] = {}  # REDIS_URL -> (valid until, policy)


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
        memory = memory_status(client)
    except redis.RedisError as exc:
        return {"reachable": False, "error": type(exc).__name__}
    return {
        "reachable": True,
        "server": "valkey" if "valkey_version" in info else "redis",
        "version": info.get("valkey_version") or info.get("redis_version"),
        "durability": durability(info, config) if config.get("appendonly") is not None else "unknown",
        "uptime_seconds": info.get("uptime_in_seconds"),
        "memory": memory,
        "problems": [asdict(p) for p in memory_problems(memory["policy"], memory["used"], memory["max"])],
    }


def memory_status(client: redis.Redis) -> dict[str, Any]:
    """``{"policy", "used", "max"}``: the eviction policy (None if the server will not say) and bytes.

    INFO memory carries the policy; managed servers that hide it from INFO may
    still answer CONFIG GET, and some forbid both.
    """
    info = _merged(client.info("memory"))
    policy = info.get("maxmemory_policy")
    if policy is None:
        try:
            policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.ResponseError:
            policy = None
    return {"policy": policy, "used": int(info.get("used_memory") or 0), "max": int(info.get("maxmemory") or 0)}


def _merged(info: dict[str, Any]) -> dict[str, Any]:
    """One node's INFO as is; a cluster's (one dict per node) as its worst node."""
    if info and all(isinstance(v, dict) for v in info.values()):
        nodes = list(info.values())
        unsafe = [n for n in nodes if n.get("maxmemory_policy", SAFE_POLICY) != SAFE_POLICY]
        return (unsafe or sorted(nodes, key=lambda n: -int(n.get("used_memory") or 0)))[0]
    return info


# --- publishing refuses an evicting Redis -------------------------------------------------


def refuse_if_evicting(client: redis.Redis) -> None:
    """Raise ``RedisEvicting`` when Redis may evict (read at most every ``POLICY_CHECK_SECONDS``).

    An evicting Redis can drop a stream after its events were accepted; a
    broker must refuse them instead. ``EVENTFLOW_ALLOW_EVICTING_REDIS`` lets
    an operator accept the risk. An unknown policy is not refused (health warns).
    """
    if conf.get("ALLOW_EVICTING_REDIS"):
        return
    policy, fresh = _cached_policy()
    if not fresh:
        policy = _remember(memory_status(client)["policy"])
    _refuse(policy)


async def arefuse_if_evicting() -> None:
    """``refuse_if_evicting`` for the asyncio publish path."""
    if conf.get("ALLOW_EVICTING_REDIS"):
        return
    policy, fresh = _cached_policy()
    if not fresh:
        client = get_async_redis()
        if type(client) is redis.asyncio.Redis:
            info = _parse_info(await acall(client, "INFO", "memory"))
        else:  # a cluster: one INFO per node
            info = _merged(await client.info("memory"))
        policy = _remember(info.get("maxmemory_policy"))
    _refuse(policy)


def _cached_policy() -> tuple[str | None, bool]:
    until, policy = _policies.get(conf.get("REDIS_URL"), (0.0, None))
    return policy, until > time.monotonic()


def _remember(policy: str | None) -> str | None:
    _policies[conf.get("REDIS_URL")] = (time.monotonic() + POLICY_CHECK_SECONDS, policy)
    return policy


def _refuse(policy: str | None) -> None:
    if policy is not None and policy != SAFE_POLICY:
        raise RedisEvicting(
            f"Redis may evict keys (maxmemory-policy {policy}), so an accepted event could be lost; nothing was "
            f"accepted. Set maxmemory-policy {SAFE_POLICY} (or EVENTFLOW_ALLOW_EVICTING_REDIS=true to take the risk)."
        )


def _parse_info(raw: bytes | str) -> dict[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
