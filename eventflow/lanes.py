"""A consumer's lanes in Redis (its group and retry schedule on each topic): what they hold,
and letting go of them when the consumer is deleted or unsubscribed.

Deleting a consumer drops what it holds, after the admin said how much
(``in_flight``). Unsubscribing it from a topic files the lane's scheduled
retries and pending events as failed events ("unsubscribed from <topic>")
before the lane goes, so nothing it was working on vanishes unseen; events
it had not been handed yet are only counted (in the log): they are no longer
for it. Either way the lane is removed from Redis (group, schedule, counter
fields), so a later subscription starts afresh, at new events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from . import keys
from .connection import get_redis
from .delivery import Delivery
from .monitor import groups_by_name, pipelined

logger = logging.getLogger(__name__)

COUNTER_FIELDS = ("acked", "skipped", "errors", "dead", "trimmed")
MAX_FILED_PER_LANE = 10_000  # pending and scheduled events filed per lane (one pass)


@dataclass(frozen=True, slots=True)
class InFlight:
    """What deleting a consumer would drop; ``reachable`` False: Redis could not be asked."""

    consumer: str
    undelivered: int = 0  # published to its topics, not yet handed to it
    pending: int = 0  # handed to a worker, not acknowledged
    scheduled: int = 0  # waiting in its retry schedule (retries and replays)
    failed: int = 0  # its failed-event rows (deleted with it)
    reachable: bool = True

    @property
    def in_redis(self) -> int:
        return self.undelivered + self.pending + self.scheduled


def in_flight(consumer: Any) -> InFlight:
    """Count what ``consumer`` (a ``Consumer`` row) holds across its topics, and its failed events."""
    failed = consumer.failed_events.count()
    streams = [t.stream_name for t in consumer.topics.all()]
    try:
        undelivered, pending, scheduled = _lane_counts(get_redis(), consumer.group_name, streams)
    except (redis.RedisError, OSError):
        return InFlight(consumer.name, failed=failed, reachable=False)
    return InFlight(consumer.name, undelivered, pending, scheduled, failed)


def _lane_counts(client: redis.Redis, group: str, streams: list[str]) -> tuple[int, int, int]:
    commands: list[tuple[str, tuple]] = []
    for stream in streams:
        commands += [("xinfo_groups", (keys.stream(stream),)), ("zcard", (keys.retry_schedule(stream, group),))]
    replies = pipelined(client, commands)
    undelivered = pending = scheduled = 0
    for index in range(len(streams)):
        info = groups_by_name(replies[2 * index]).get(group) or {}
        undelivered += int(info.get("lag") or 0)
        pending += int(info.get("pending") or 0)
        scheduled += replies[2 * index + 1] if isinstance(replies[2 * index + 1], int) else 0
    return undelivered, pending, scheduled


def release(group: str, streams: list[str], client: redis.Redis | None = None) -> None:
    """Remove a consumer's lanes on ``streams``: its group, its retry schedule, its counter fields."""
    pipe = (client or get_redis()).pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_destroy(keys.stream(stream), keys.group(group))
        pipe.delete(keys.retry_schedule(stream, group), keys.retry_payloads(stream, group))
        pipe.hdel(keys.counters(stream), *[f"{name}:{group}" for name in COUNTER_FIELDS])
    pipe.execute(raise_on_error=False)  # a stream that never existed has no group to destroy


def leave(consumer: Any, topic: Any) -> int:
    """Unsubscribe ``consumer`` from ``topic`` (rows): file its lane's scheduled and pending events, then release it.

    Return how many failed events were filed. The rows are written before the
    lane is removed: if Redis or the database fails in between, the lane stays
    (the caller logs it) and nothing is lost.
    """
    from . import failures

    client = get_redis()
    stream, group = topic.stream_name, consumer.group_name
    reason = f"unsubscribed from {topic.name}"
    filed = [(d, f"{reason} with a retry scheduled", "") for d in _scheduled(client, stream, group)]
    held = f"{reason} while a worker held it (it may have been handled)"
    filed += [(d, held, "") for d in _pending(client, stream, group)]
    undelivered = _lane_counts(client, group, [stream])[0]
    if filed:
        failures.record_many(consumer.pk, filed)
    release(group, [stream], client)
    logger.warning(
        "consumer %s left topic %s: %d scheduled or pending events filed as failed events; "
        "%d events not yet delivered to it are no longer for it",
        consumer.name,
        topic.name,
        len(filed),
        undelivered,
    )
    return len(filed)


def _scheduled(client: redis.Redis, stream: str, group: str) -> list[Delivery]:
    payloads = client.hgetall(keys.retry_payloads(stream, group))
    deliveries = []
    for member, raw in list(payloads.items())[:MAX_FILED_PER_LANE]:
        entry = orjson.loads(raw)
        deliveries.append(
            Delivery(
                topic=stream,
                envelope=entry["e"],
                attempt=max(0, int(entry["attempt"]) - 1),  # the entry holds the attempt it waits for
                stream_id=entry.get("stream_id", ""),
                member=member.decode(),
                failed_event=entry.get("failed_event"),
            )
        )
    return deliveries


def _pending(client: redis.Redis, stream: str, group: str) -> list[Delivery]:
    try:
        entries = client.xpending_range(keys.stream(stream), keys.group(group), "-", "+", MAX_FILED_PER_LANE)
    except redis.ResponseError:  # no group (or no stream): nothing pending
        return []
    pipe = client.pipeline(transaction=False)
    for entry in entries:
        pipe.xrange(keys.stream(stream), min=entry["message_id"], max=entry["message_id"], count=1)
    deliveries = []
    for entry, found in zip(entries, pipe.execute()):
        if found and b"e" in found[0][1]:  # trimmed meanwhile: retention counted it as lost
            envelope = orjson.loads(found[0][1][b"e"])
            deliveries.append(Delivery(stream, envelope, entry["times_delivered"], entry["message_id"].decode()))
    return deliveries
