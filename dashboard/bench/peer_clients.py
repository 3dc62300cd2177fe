"""The brokers an operator would pick instead of EventFlow, driven by their best Python clients.

Each peer publishes the same JSON event EventFlow stores, with durability
comparable to EventFlow's AOF ``everysec`` Redis: RabbitMQ with a durable queue,
persistent messages and publisher confirms (aio-pika); NATS JetStream with
file storage and a publish ack per message (nats-py). A batch is 100 messages
sent at once with their confirms awaited together, as EventFlow's
``publish_batch`` sends 100 events in one round trip.

The consuming side runs in its own process (``python -m
dashboard.bench.peer_clients``), as an EventFlow worker does: it drains a
pre-filled queue (counted from its first message to its last) or notes
publish→handler latencies. Benchmark-only dependencies: see
``.ci/requirements-bench.txt``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

BATCH = 100
PREFETCH = 500  # messages in flight to one consumer, as EventFlow reads up to 500 a batch


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """How one peer is reached and set up, as the table states it."""

    name: str
    client: str
    settings: str


AMQP = PeerInfo(
    "RabbitMQ",
    "aio-pika",
    "durable queue, persistent messages, publisher confirms (batch: 100 awaited together), prefetch 500, "
    "acks every 100 (multiple)",
)
NATS = PeerInfo(
    "NATS JetStream",
    "nats-py",
    "file storage, publish ack per message (batch: 100 awaited together), pull consumer fetching 500, "
    "ack-all per fetch",
)


def missing_client(module: str) -> str | None:
    """The reason a peer cannot be measured, or None when its client imports."""
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed: pip install -r .ci/requirements-bench.txt"
    return None


# --- RabbitMQ ---------------------------------------------------------------------------

Send = Callable[[bytes], Awaitable[None]]


async def _amqp_channel(url: str, queue: str, confirms: bool):
    import aio_pika

    connection = await aio_pika.connect(url, timeout=3)
    channel = await connection.channel(publisher_confirms=confirms)
    await channel.declare_queue(queue, durable=True)
    return connection, channel


async def amqp_sender(url: str, queue: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """``send(body)`` (resolves on the broker's confirm) and ``close()`` for one connection."""
    import aio_pika

    connection, channel = await _amqp_channel(url, queue, confirms=True)
    exchange = channel.default_exchange

    async def send(body: bytes) -> None:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key=queue)

    return send, connection.close


async def amqp_purge(url: str, queue: str) -> None:
    connection, channel = await _amqp_channel(url, queue, confirms=False)
    try:
        await channel.queue_delete(queue)
    finally:
        await connection.close()


async def _amqp_consume(url: str, queue: str, count: int, on_message: Callable[[bytes], None]) -> None:
    """Take ``count`` messages from ``queue``, calling ``on_message`` with each body."""
    connection, channel = await _amqp_channel(url, queue, confirms=False)
    await channel.set_qos(prefetch_count=PREFETCH)
    done = asyncio.Event()
    seen = 0

    async def handle(message) -> None:
        nonlocal seen
        on_message(message.body)
        seen += 1
        if seen % BATCH == 0 or seen >= count:
            await message.ack(multiple=True)
        if seen >= count:
            done.set()

    queue_obj = await channel.get_queue(queue)
    await queue_obj.consume(handle)
    _ready()
    try:
        await done.wait()
    finally:
        await connection.close()


# --- NATS JetStream ---------------------------------------------------------------------


async def _nats(url: str):
    import nats

    # No reconnecting: a server that is not there is a reason to leave the peer out, not to wait.
    async def quiet(exc: Exception) -> None:  # the caller reports the failure once, in the table
        pass

    client = await asyncio.wait_for(
        nats.connect(url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, error_cb=quiet),
        timeout=5,
    )
    return client, client.jetstream()


async def nats_stream(url: str, stream: str) -> None:
    """A fresh file-backed stream on subject ``<stream>``."""
    from nats.js.api import StorageType, StreamConfig

    client, js = await _nats(url)
    try:
        await _nats_delete(js, stream)
        await js.add_stream(StreamConfig(name=stream, subjects=[stream], storage=StorageType.FILE))
    finally:
        await client.close()


async def _nats_delete(js, stream: str) -> None:
    from nats.js.errors import NotFoundError

    try:
        await js.delete_stream(stream)
    except NotFoundError:
        pass


async def nats_drop(url: str, stream: str) -> None:
    client, js = await _nats(url)
    try:
        await _nats_delete(js, stream)
    finally:
        await client.close()


async def nats_sender(url: str, stream: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """``send(body)`` (resolves on JetStream's publish ack) and ``close()`` for one connection."""
    client, js = await _nats(url)

    async def send(body: bytes) -> None:
        await js.publish(stream, body)

    return send, client.close


async def _nats_consume(url: str, stream: str, count: int, on_message: Callable[[bytes], None]) -> None:
    """Take ``count`` messages from ``stream``, calling ``on_message`` with each body."""
    from nats.js.api import AckPolicy, ConsumerConfig

    client, js = await _nats(url)
    config = ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=-1)
    subscription = await js.pull_subscribe(stream, durable="bench", stream=stream, config=config)
    seen = 0
    _ready()
    try:
        while seen < count:
            try:
                messages = await subscription.fetch(PREFETCH, timeout=0.05)
            except TimeoutError:  # nats' own and FetchTimeoutError subclass it; a bare asyncio one comes too
                continue
            for message in messages:
                on_message(message.data)
            seen += len(messages)
            await messages[-1].ack()
    finally:
        await client.close()


# --- publishing, the same way for every peer ------------------------------------------------

Sender = Callable[[str, str], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]
SENDERS: dict[str, Sender] = {"amqp": amqp_sender, "nats": nats_sender}


async def publish_rate(peer: str, url: str, name: str, bodies: list[bytes], batch: int) -> float:
    """Messages/s sending ``bodies`` ``batch`` at a time, each batch's confirms awaited together."""
    send, close = await SENDERS[peer](url, name)
    try:
        start = time.perf_counter()
        for offset in range(0, len(bodies), batch):
            await asyncio.gather(*(send(body) for body in bodies[offset : offset + batch]))
        return len(bodies) / (time.perf_counter() - start)
    finally:
        await close()


async def paced(peer: str, url: str, name: str, rate: float, total: int) -> None:
    """Send ``total`` timed events at ``rate``; confirms are awaited at the end, so they never slow the pace."""
    send, close = await SENDERS[peer](url, name)
    try:
        start = time.perf_counter()
        pending = []
        for i in range(total):
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0.0005:
                await asyncio.sleep(ahead)
            body = json.dumps({"type": "tick", "data": {"t": time.time(), "i": i}}).encode()
            pending.append(asyncio.ensure_future(send(body)))
        await asyncio.gather(*pending)
    finally:
        await close()


# --- the consuming process -----------------------------------------------------------------


def _ready() -> None:
    """Tell the parent the subscription is in place (its first line of output)."""
    print("ready", flush=True)


CONSUMERS: dict[str, Callable[[str, str, int, Callable[[bytes], None]], Awaitable[None]]] = {
    "amqp": _amqp_consume,
    "nats": _nats_consume,
}


def consume(peer: str, url: str, name: str, count: int, mode: str) -> dict:
    """Take ``count`` messages; ``drain``: first/last times, ``latency``: each message's age."""
    marks: list[float] = []
    ages: list[float] = []

    def on_message(body: bytes) -> None:
        now = time.time()
        if mode == "latency":
            ages.append(now - json.loads(body)["data"]["t"])
        elif not marks:
            marks.append(now)

    asyncio.run(CONSUMERS[peer](url, name, count, on_message))
    if mode == "latency":
        return {"ages": ages}
    return {"first": marks[0], "last": time.time()}


if __name__ == "__main__":
    # python -m dashboard.bench.peer_clients PEER URL NAME COUNT MODE: one JSON line on stdout.
    peer_name, peer_url, queue_name, total, how = sys.argv[1:6]
    print(json.dumps(consume(peer_name, peer_url, queue_name, int(total), how)), flush=True)
