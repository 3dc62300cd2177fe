"""One-click fixes for a consumer's stuck work, each audited.

- ``reclaim_now``: pending entries idle past the ack timeout whose worker is
  gone (no heartbeat) go to a live worker of the consumer now;
- ``dead_letter_now``: one pending entry (a poison event, delivered again and
  again) becomes a failed event now, "dead-lettered by <user>", and is acked,
  through the dead-letter outbox as settlement does;
- ``skip_backlog``: the consumer's group jumps to the stream's end, leaving
  the events not yet delivered unhandled (``backlog`` previews how many);
- ``set_paused``: pause or resume the consumer.

Each writes an entry in Django's admin log (who, when, what, on the consumer)
and a line on the ``eventflow.audit`` logger.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from django.db import DatabaseError

from . import conf, failures, keys, topics
from .connection import LuaScript, call, get_redis
from .delivery import Delivery, Settlement
from .errors import Conflict, NotFound
from .models import Consumer, FailedEvent

audit = logging.getLogger("eventflow.audit")
logger = logging.getLogger(__name__)

# KEYS: stream. ARGV: group. Moves the group to the stream's end; returns how many entries it skipped.
_SKIP = LuaScript(
    """
local skipped = 0
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, lag
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'lag' then lag = g[i + 1] end
  end
  if name == ARGV[1] then skipped = tonumber(lag) or 0 end
end
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], '$')
return skipped
""",
)


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One event a worker of the consumer holds and has not acked."""

    topic: str  # its display name (the page links and posts it); Redis knows it as ``topics.stream_name``
    stream_id: str
    owner: str
    idle: float  # seconds
    deliveries: int
    owner_alive: bool
    overdue: bool  # idle past the consumer's ack timeout


def live_workers(client: redis.Redis) -> set[str]:
    """Worker ids with a current heartbeat."""
    since = time.time() - conf.get("HEARTBEAT_TTL")
    ids = [i.decode() for i in client.zrangebyscore(keys.workers(), since, "+inf")]
    if not ids:
        return set()
    beats = client.mget([keys.worker(i) for i in ids])
    return {i for i, beat in zip(ids, beats) if beat is not None}


def pending_entries(consumer: Consumer, limit: int = 100) -> list[PendingEntry]:
    """The consumer's pending entries on every topic, longest idle first."""
    client = get_redis()
    live = live_workers(client)
    found = []
    for topic, stream in consumer.topics.values_list("name", "stream_name"):
        try:
            rows = client.xpending_range(keys.stream(stream), keys.group(consumer.group_name), "-", "+", limit)
        except redis.ResponseError:  # no group yet
            continue
        for row in rows:
            idle = row["time_since_delivered"] / 1000
            owner = row["consumer"].decode()
            found.append(
                PendingEntry(
                    topic,
                    row["message_id"].decode(),
                    owner,
                    idle,
                    row["times_delivered"],
                    owner in live,
                    idle >= consumer.ack_timeout,
                )  # fmt: skip
            )
    return sorted(found, key=lambda e: -e.idle)[:limit]


def reclaim_now(consumer: Consumer, user: Any) -> int:
    """Give pending entries idle past the ack timeout whose worker is gone to a live worker; return how many.

    They are claimed for a live worker of this consumer with their idle time
    kept, so its next reclaim pass (within a second) takes them up. Raise
    Conflict if no worker of the consumer is alive.
    """
    client = get_redis()
    live = sorted(_live_workers_of(client, consumer.name))
    if not live:
        raise Conflict(f"no live worker runs {consumer.name!r}: start one, then reclaim")
    stuck = [e for e in pending_entries(consumer, limit=1000) if e.overdue and not e.owner_alive]
    idle_ms = int(consumer.ack_timeout * 1000)
    group = keys.group(consumer.group_name)
    for topic in {e.topic for e in stuck}:
        ids = [e.stream_id for e in stuck if e.topic == topic]
        stream = keys.stream(topics.stream_name(topic))
        call(client, "XCLAIM", stream, group, live[0], 0, *ids, "IDLE", idle_ms, "JUSTID")
    _audit(user, consumer, f"reclaimed {len(stuck)} pending events of gone workers for {live[0]}")
    return len(stuck)


def _live_workers_of(client: redis.Redis, consumer: str) -> set[str]:
    live = live_workers(client)
    beats = client.mget([keys.worker(i) for i in live]) if live else []
    return {i for i, beat in zip(live, beats) if beat and consumer in orjson.loads(beat).get("consumers", {})}


def dead_letter_now(consumer: Consumer, topic: str, stream_id: str, user: Any) -> FailedEvent | None:
    """Make one pending entry a failed event now (error "dead-lettered by <user>") and ack it.

    The way settlement does (``delivery.Settlement.dead_letter``): the ack and
    the dead letter, parked in the lane's outbox, are one transaction, so a
    database that is down cannot lose the event. The row is then written from
    the outbox; while the database is down it stays parked for the workers'
    next drain, and None is returned.
    """
    client = get_redis()
    redis_topic = topics.stream_name(topic)
    stream, group = keys.stream(redis_topic), keys.group(consumer.group_name)
    try:
        held = client.xpending_range(stream, group, stream_id, stream_id, 1)
    except redis.ResponseError:
        held = []
    if not held:
        raise NotFound(f"{stream_id} is not pending for {consumer.name!r} on {topic!r}")
    entries = client.xrange(stream, stream_id, stream_id)
    if not entries or b"e" not in entries[0][1]:
        raise Conflict(f"{stream_id} was trimmed from {topic!r}: nothing to keep")
    item = Delivery(redis_topic, orjson.loads(entries[0][1][b"e"]), held[0]["times_delivered"], stream_id)
    settlement = Settlement(consumer.group_name, consumer.pk)
    settlement.dead_letter(item, f"dead-lettered by {_name(user)}", "")
    settlement.flush(client)
    _audit(user, consumer, f"dead-lettered {topic} {stream_id} (delivered {item.attempt} times)")
    try:
        failures.drain_outbox(client, consumer.pk, consumer.group_name, [redis_topic])
        return FailedEvent.objects.get(consumer=consumer, topic__name=topic, event_id=str(item.envelope.get("id", "")))
    except DatabaseError:
        return None  # parked: a worker's drain writes it once the database is back


def backlog(consumer: Consumer, topic: str) -> int:
    """How many events ``skip_backlog`` would skip now: those no worker of the consumer was given yet."""
    try:
        groups = get_redis().xinfo_groups(keys.stream(topics.stream_name(topic)))
    except redis.ResponseError:
        return 0
    for group in groups:
        if group["name"].decode() == keys.group(consumer.group_name):
            return int(group.get("lag") or 0)
    return 0


def skip_backlog(consumer: Consumer, topic: str, user: Any) -> int:
    """Move the consumer's group on ``topic`` to the stream's end; return how many events it skipped."""
    try:
        skipped = _SKIP(get_redis(), [keys.stream(topics.stream_name(topic))], [keys.group(consumer.group_name)])
    except redis.ResponseError as exc:
        raise Conflict(f"{consumer.name!r} has no group on {topic!r} yet: {exc}") from None
    _audit(user, consumer, f"skipped the backlog of {topic} to now: {skipped} events left unhandled")
    return int(skipped)


def set_paused(consumer: Consumer, paused: bool, user: Any) -> None:
    Consumer.objects.filter(pk=consumer.pk).update(paused=paused)
    consumer.paused = paused
    _audit(user, consumer, "paused" if paused else "resumed")


def _name(user: Any) -> str:
    return user.get_username() if user is not None and getattr(user, "is_authenticated", False) else "-"


def _audit(user: Any, consumer: Consumer, message: str) -> None:
    audit.info("consumer %s: %s by %s", consumer.name, message, _name(user))
    if user is not None and getattr(user, "is_authenticated", False):
        from django.contrib.admin.models import CHANGE, LogEntry

        try:
            LogEntry.objects.log_actions(user.pk, [consumer], CHANGE, message, single_object=True)
        except DatabaseError:  # the database is down: the audit logger's line above still says it
            logger.warning("consumer %s: admin log entry not written (database down): %s", consumer.name, message)
