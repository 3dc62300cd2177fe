"""The one door to Redis: every client EventFlow uses is made here."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import redis

from . import conf

_lock = threading.Lock()
_clients: dict[tuple[str, bool], redis.Redis] = {}


def _url() -> str:
    if conf.get("EMBEDDED_REDIS"):
        from . import embedded

        embedded.ensure_running()
    return conf.get("REDIS_URL")


def get_redis(*, blocking: bool = False) -> redis.Redis:
    """Return the shared client for this process.

    ``blocking=True`` gives a client without a socket timeout, for commands
    that wait on the server (``XREADGROUP BLOCK``); redis-py 8 otherwise
    times them out after 5 seconds.
    """
    key = (conf.get("REDIS_URL"), blocking)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    _url(),
                    socket_timeout=None if blocking else 5,
                    socket_connect_timeout=2,
                    health_check_interval=30,
                )
                _clients[key] = client
    return client


def reset() -> None:
    """Forget every client (after a fork, or when tests switch servers)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


class LuaScript:
    """A server-side script run by its SHA (loaded on first use or after a restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)
