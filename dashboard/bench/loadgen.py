"""A small HTTP/1.1 load generator over loopback: asyncio protocols, keep-alive, no pipelining.

Each connection sends a request, reads the whole response (by
Content-Length), and sends the next; ``rate`` spreads the sends evenly in
time instead of as fast as possible. Bounded by ``seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Load:
    """What a run did: responses by status and each request's latency (seconds)."""

    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def request(path: str, token: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Client(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.run.loop.create_task(self.next())

    async def next(self) -> None:
        payload = await self.run.next_request()
        if payload is None or self.transport is None:
            self.run.idle(self)
            return
        self.sent_at = time.perf_counter()
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        self.run.done(status, time.perf_counter() - self.sent_at)
        self.run.loop.create_task(self.next())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.run.idle(self)


class _Run:
    def __init__(self, make: Callable[[int], bytes], seconds: float, rate: float | None, connections: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.make = make
        self.rate = rate
        self.load = Load()
        self.started = time.perf_counter()
        self.deadline = self.started + seconds
        self.sent = 0
        self.open = connections
        self.finished = self.loop.create_future()

    async def next_request(self) -> bytes | None:
        now = time.perf_counter()
        if now >= self.deadline:
            return None
        if self.rate:
            due = self.started + self.sent / self.rate
            if due > self.deadline:
                return None
            if due > now:
                self.sent += 1
                await asyncio.sleep(due - now)
                return self.make(self.sent - 1)
        self.sent += 1
        return self.make(self.sent - 1)

    def done(self, status: int, latency: float) -> None:
        self.load.statuses[status] = self.load.statuses.get(status, 0) + 1
        self.load.latencies.append(latency)

    def idle(self, client: _Client) -> None:
        if client.transport is not None:
            client.transport.close()
            return
        self.open -= 1
        if self.open <= 0 and not self.finished.done():
            self.finished.set_result(None)


async def _drive(port: int, make: Callable[[int], bytes], seconds: float, rate: float | None, connections: int) -> Load:
    run = _Run(make, seconds, rate, connections)
    for _ in range(connections):
        await run.loop.create_connection(lambda: _Client(run), "127.0.0.1", port)
    try:
        await asyncio.wait_for(run.finished, seconds + 30)
    except TimeoutError:
        pass
    run.load.seconds = time.perf_counter() - run.started
    return run.load


def drive(
    port: int, make: Callable[[int], bytes], *, seconds: float, rate: float | None = None, connections: int = 32
) -> Load:
    """Send requests built by ``make(i)`` to ``127.0.0.1:port`` for ``seconds``; return what happened."""
    return asyncio.run(_drive(port, make, seconds, rate, connections))
