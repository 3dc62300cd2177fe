"""The limits: minimal programs doing only the essential work of each path.

Each is a few lines of plain redis-py (or a bare ASGI callable) with nothing of
EventFlow in it, so the table can say how close EventFlow comes to what this
machine, this Redis and this Python can do at all. This module imports
nothing from Django, so an ASGI server can load ``raw_app`` on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis


def pipelined_xadd(client: redis.Redis, stream: str, payloads: Sequence[bytes], batch: int) -> float:
    """XADD every payload, ``batch`` commands per round trip; return events/s."""
    start = time.perf_counter()
    for offset in range(0, len(payloads), batch):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[offset : offset + batch]:
            pipe.xadd(stream, {"e": payload})
        pipe.execute()
    return len(payloads) / (time.perf_counter() - start)


def one_round_trip_xadd(client: redis.Redis, stream: str, payloads: Sequence[bytes]) -> float:
    """XADD every payload, one round trip each; return events/s."""
    start = time.perf_counter()
    for payload in payloads:
        client.xadd(stream, {"e": payload})
    return len(payloads) / (time.perf_counter() - start)


def drain(client: redis.Redis, stream: str, group: str, total: int, batch: int) -> float:
    """Read ``total`` events with XREADGROUP, JSON-decode each (the no-op), ack them
    pipelined with the next read; return events/s. The stream must be filled."""
    client.xgroup_create(stream, group, id="0", mkstream=True)
    done, acks = 0, []
    start = time.perf_counter()
    while done < total:
        pipe = client.pipeline(transaction=False)
        if acks:
            pipe.xack(stream, group, *acks)
        pipe.xreadgroup(group, "raw", {stream: ">"}, count=batch)
        replies = pipe.execute()[-1]
        acks = []
        for _, entries in replies or []:
            for sid, fields in entries:
                orjson.loads(fields[b"e"])
                acks.append(sid)
        done += len(acks)
    if acks:
        client.xack(stream, group, *acks)
    return total / (time.perf_counter() - start)


def latency_reader(client: redis.Redis, stream: str, group: str, expected: int, out_key: str) -> None:
    """Block-read ``expected`` events (each carrying its publish time as ``t``), ack them,
    and push every publish→read latency (seconds) to the list ``out_key``."""
    latencies: list[float] = []
    client.set(f"{out_key}:ready", 1)
    while len(latencies) < expected:
        replies = client.xreadgroup(group, "raw", {stream: ">"}, count=100, block=1000)
        now = time.time()
        for _, entries in replies or []:
            for _sid, fields in entries:
                latencies.append(now - orjson.loads(fields[b"e"])["data"]["t"])
            client.xack(stream, group, *[sid for sid, _ in entries])
    client.rpush(out_key, *latencies)


# --- the raw ASGI endpoint ----------------------------------------------------------
# Served by the same server (daphne) and process count as EventFlow's publish
# endpoint. It parses the JSON body and XADDs each event: no auth, no checks.

_client: Any = None


async def raw_app(scope: dict, receive: Any, send: Any) -> None:
    global _client
    if scope["type"] == "lifespan":
        return
    if _client is None:
        import redis.asyncio

        _client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    document = orjson.loads(body)
    events = document["events"] if "events" in document else [document]
    stream = os.environ["EVENTFLOW_BENCH_STREAM"]
    if len(events) == 1:
        await _client.xadd(stream, {"e": orjson.dumps(events[0])})
    else:
        pipe = _client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(stream, {"e": orjson.dumps(event)})
        await pipe.execute()
    reply = orjson.dumps({"accepted": len(events)})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


if __name__ == "__main__":  # the raw latency reader, run as its own process
    import sys

    url, stream_key, group_name, count, out = sys.argv[1:6]
    latency_reader(redis.Redis.from_url(url), stream_key, group_name, int(count), out)
