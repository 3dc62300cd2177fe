"""The one door to Redis: every client EventFlow uses is made here.

``REDIS_URL`` names one server (``redis://``, ``rediss://``, ``unix://``) or,
with the ``redis+cluster://`` (``rediss+cluster://``) scheme, any node of a
Redis Cluster; then every client is a ``RedisCluster``. A topic's keys share a
hash tag, so each script and transaction touches one slot.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

import redis
from redis.cluster import RedisCluster

from . import conf

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is in requirements.txt; without it, redis-py packs
    _hiredis_pack = None

_lock = threading.Lock()
_clients: dict[tuple[str, bool], Any] = {}

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def resolved_url() -> str:
    """The Redis URL in use, starting the embedded server first when it is the one."""
    return _url()


def _url() -> str:
    if conf.get("EMBEDDED_REDIS"):
        from . import embedded

        embedded.ensure_running()
    return conf.get("REDIS_URL")


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client: multi-topic commands must then go topic by topic."""
    return isinstance(client, RedisCluster)


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
                client = _make_client(_url(), blocking)
                _clients[key] = client
    return client


def _make_client(url: str, blocking: bool) -> Any:
    options: dict[str, Any] = {"socket_timeout": None if blocking else 5, "socket_connect_timeout": 2}
    if is_cluster_url(url):
        return RedisCluster.from_url(url.replace("+cluster", "", 1), **options)
    return redis.Redis.from_url(url, health_check_interval=30, **options)


def reset() -> None:
    """Forget every client (after a fork, or when tests switch servers)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _async_clients.clear()


# Per event loop (weakly: a closed loop's clients go with it), then per URL.
_async_clients: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def get_async_redis() -> Any:
    """The asyncio client for the running event loop (one per loop: connections belong to it)."""
    import asyncio

    import redis.asyncio

    url = conf.get("REDIS_URL")
    clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(url)
    if client is None:
        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 2}
        if is_cluster_url(url):
            from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

            client = AsyncRedisCluster.from_url(url.replace("+cluster", "", 1), **options)
        else:
            client = redis.asyncio.Redis.from_url(_url(), **options)
        clients[url] = client
    return client


async def acall(client: Any, *args: Any) -> Any:
    """``call`` for an asyncio client: one command, raw reply, no retries."""
    import redis.asyncio

    if type(client) is not redis.asyncio.Redis:
        return await client.execute_command(*args)
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(_packed(conn, (args,)))
        return await conn.read_response()
    except redis.ResponseError:
        raise
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


def call(client: Any, *args: Any) -> Any:
    """Run one command and return its raw reply, with the least client overhead.

    On a plain client this borrows a pooled connection, writes the command and
    reads the reply: redis-py's own path adds retries and bookkeeping that
    cost more than the round trip on loopback. It never retries: a retried
    write whose reply was lost could store twice, so a connection error is the
    caller's to report. Other clients (a cluster) take redis-py's path.
    """
    if type(client) is not redis.Redis or client.connection is not None:
        return client.execute_command(*args)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(_packed(conn, (args,)))
        return conn.read_response()
    except redis.ResponseError:
        raise  # an error reply leaves the connection in step
    except BaseException:
        conn.disconnect()  # the reply may still be in flight: never reuse this connection
        raise
    finally:
        pool.release(conn)


def call_many(client: Any, commands: list[tuple]) -> list[Any]:
    """Send several commands in one round trip; return their raw replies in order.

    An error reply comes back as the exception object in its place (nothing
    is raised for it), so one failed command does not hide the others' replies.
    """
    if type(client) is not redis.Redis or client.connection is not None:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(_packed(conn, commands))
        return [_reply(conn) for _ in commands]
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def call_transaction(client: Any, commands: list[tuple]) -> list[Any]:
    """Run ``commands`` in one MULTI/EXEC, in one round trip; return EXEC's replies in order.

    A command that failed while the transaction ran comes back as the
    exception object in its place. Raise if Redis refused the transaction as
    a whole (see ``transaction_result``) or if the connection failed (then
    none or all of it ran). Like ``call``, it never retries. A cluster client
    takes redis-py's transaction (the commands' keys must share a slot).
    """
    if is_cluster(client):
        pipe = client.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)
    return transaction_result(call_many(client, in_transaction(commands)))


def in_transaction(commands: list[tuple]) -> list[tuple]:
    """``commands`` between MULTI and EXEC, for ``call_many`` (then read the replies with ``transaction_result``)."""
    return [("MULTI",), *commands, ("EXEC",)]


def transaction_result(replies: list[Any]) -> list[Any]:
    """EXEC's replies, from the replies to ``in_transaction(commands)``.

    Raise if Redis refused the transaction as a whole: a command rejected
    while queueing (e.g. out of memory), and then nothing of it ran.
    """
    refused = next((reply for reply in replies if isinstance(reply, Exception)), None)
    if refused is not None:  # the queueing error says more than EXEC's EXECABORT after it
        raise refused if isinstance(refused, redis.RedisError) else redis.RedisError(str(refused))
    if not isinstance(replies[-1], list):
        raise redis.RedisError("the transaction was aborted")
    return replies[-1]


def _packed(conn: Any, commands: Any) -> list[bytes]:
    """Commands in the Redis protocol, as one buffer (one ``sendall``).

    hiredis packs each command directly: redis-py's wrapper around it checks
    every argument first, which costs more than the packing on the publish path.
    """
    if _hiredis_pack is None:
        return conn.pack_commands(commands)
    try:
        return [b"".join([_hiredis_pack(command) for command in commands])]
    except TypeError as exc:  # e.g. None as an argument: redis-py's error for it
        raise redis.DataError(str(exc)) from None


def _reply(conn: Any) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as error:
        return error


class LuaScript:
    """A server-side script run by its SHA (loaded on first use or after a restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return call(client, *self.command(keys, args))
        except redis.exceptions.NoScriptError:
            return call(client, "EVAL", self.source, len(keys), *keys, *args)

    def command(self, keys: list[str], args: list[Any]) -> tuple:
        """The EVALSHA command, for ``call_many``; run the script itself if it answers NOSCRIPT."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)
