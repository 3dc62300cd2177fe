"""The Redis side of delivery: reading, acking, retrying and reclaiming events.

A *lane* is one consumer on one topic: the consumer's group on the topic's
stream, plus its retry schedule (a sorted set scored by due time, the
envelopes beside it in a hash). Retries and replays wait in the schedule, not
in the stream, so they never hold up the next events, and they reach that
one consumer only. A claimed retry is leased until ``ack_timeout``: a worker
that dies while holding it loses nothing. A worker still working through a
long batch renews its hold (``refresh_hold``), so only a dead or stuck
worker's events are taken over.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from . import keys
from .connection import LuaScript, call, call_many, call_transaction, in_transaction, is_cluster, transaction_result

logger = logging.getLogger(__name__)

# KEYS: schedule, payloads. ARGV: now, lease-until, count.
# Returns [member, payload, member, payload, ...] for due entries, leased.
_CLAIM_DUE = LuaScript(
    """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('HGET', KEYS[2], member) or ''
end
return out
""",
)

# KEYS: stream, schedule. ARGV: group, worker, new lease-until, then one pair per delivery:
# a stream id and '' (an entry of the group's pending list), or a schedule member and the
# lease the worker took on it. Returns 1 (still the worker's: hold renewed) or 0 (another
# worker took it over: left alone) per pair, in order.
# XCLAIM ... JUSTID resets the idle time without counting a delivery, but claims from any
# owner, hence the XPENDING check first. A lane whose group is gone (Redis lost its data)
# has no other worker, so its entries stay the worker's.
_KEEP_HOLD = LuaScript(
    """
local group, worker, lease = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local name, taken = ARGV[i], ARGV[i + 1]
  local held
  if taken == '' then
    local entry = redis.pcall('XPENDING', KEYS[1], group, name, name, 1)
    if entry.err then
      held = true
    else
      held = entry[1] ~= nil and entry[1][2] == worker
      if held then redis.call('XCLAIM', KEYS[1], group, worker, 0, name, 'JUSTID') end
    end
  else
    local score = redis.call('ZSCORE', KEYS[2], name)
    held = score and tonumber(score) == tonumber(taken)
    if held then redis.call('ZADD', KEYS[2], 'XX', lease, name) end
  end
  out[#out + 1] = held and 1 or 0
end
return out
""",
)


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A consumer's settings as a worker needs them (loaded from the database)."""

    id: int
    name: str  # shown in logs and webhook headers; Redis knows the consumer as ``group``
    group: str  # its Redis identity (``Consumer.group_name``): its groups, schedules, counters
    handler: str
    topics: tuple[str, ...]  # its topics' Redis identities (``Topic.stream_name``)
    type_patterns: tuple[str, ...]
    max_attempts: int
    retry_initial: float
    retry_factor: float
    retry_max: float
    ack_timeout: float
    paused: bool
    kind: str = "python"  # or "webhook": then ``handler`` is the URL events are POSTed to
    webhook_secret: str = dataclasses.field(default="", repr=False)  # signs webhook requests; kept out of logs

    @classmethod
    def from_model(cls, consumer: Any) -> ConsumerSpec:
        return cls(
            id=consumer.pk,
            name=consumer.name,
            group=consumer.group_name,
            handler=consumer.handler,
            topics=tuple(sorted(t.stream_name for t in consumer.topics.all())),
            type_patterns=tuple(consumer.type_patterns()),
            max_attempts=consumer.max_attempts,
            retry_initial=consumer.retry_initial,
            retry_factor=consumer.retry_factor,
            retry_max=consumer.retry_max,
            ack_timeout=consumer.ack_timeout,
            paused=consumer.paused,
            kind=consumer.kind,
            webhook_secret=consumer.webhook_secret,
        )

    def accepts_type(self, event_type: str) -> bool:
        return not self.type_patterns or any(fnmatch.fnmatchcase(event_type, p) for p in self.type_patterns)

    def retry_delay(self, attempt: int) -> float:
        return min(self.retry_max, self.retry_initial * self.retry_factor ** (attempt - 1))


REPLAY_STREAM_MEMBER = "rs:"  # a member "rs:<entry id>": read from the lane's replay stream, not the schedule


@dataclass(slots=True)
class Delivery:
    """One event handed to one consumer: from the stream or from its schedule."""

    topic: str
    envelope: dict
    attempt: int
    stream_id: str
    member: str = ""  # set when it came from the retry schedule
    failed_event: int | None = None  # the FailedEvent row a replay updates
    lease_until: float = 0.0  # with ``member``: the schedule score this worker's lease set
    replay: int | None = None  # the Replay job that sent it again (eventflow.replays)
    unreadable: str = ""  # why the stream entry could not be decoded ("": it could); see ``unreadable_delivery``

    @property
    def from_schedule(self) -> bool:
        return self.member != ""


def ensure_group(client: redis.Redis, topic: str, consumer: str, start: str = "$") -> bool:
    """Create the consumer's group on the topic's stream, starting after ``start`` (default: at new events).

    Return True if it was created now.
    """
    try:
        client.xgroup_create(keys.stream(topic), keys.group(consumer), id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc) or _group_exists(client, topic, consumer):
            return False  # a full Redis (OOM) refuses even this no-op: a restarted worker must still start
        raise
    return True


def _group_exists(client: redis.Redis, topic: str, consumer: str) -> bool:
    try:
        groups = client.xinfo_groups(keys.stream(topic))
    except redis.ResponseError:
        return False  # no stream
    name = keys.group(consumer)
    return any(g["name"] in (name, name.encode()) for g in groups)


def read_new(
    client: redis.Redis, consumer: str, worker: str, topics: tuple[str, ...], count: int, block_ms: int | None
) -> list[Delivery]:
    """Read events no member of the group has seen yet, from all given topics.

    On a Redis Cluster the topics' streams live on different slots, so it
    reads topic by topic there (blocking on one at a time, in turn).
    """
    if is_cluster(client) and len(topics) > 1:
        work = take(client, consumer, worker, topics, count, 0.0, schedules=False)
        if work or block_ms is None:
            return work
        topics = (topics[int(time.monotonic() * 1000 / max(1, block_ms)) % len(topics)],)
    replies = call(client, *_xreadgroup(consumer, worker, topics, count, block_ms))
    return _deliveries(replies or [], attempt=1)


def take(
    client: redis.Redis,
    consumer: str,
    worker: str,
    topics: tuple[str, ...],
    count: int,
    lease_seconds: float,
    *,
    schedules: bool = True,
) -> list[Delivery]:
    """Due retries and replays from every lane's schedule, then new events: one round trip, no waiting."""
    reading = Take(client, consumer, worker, topics, count, lease_seconds, schedules=schedules)
    return reading.deliveries(call_many(client, reading.commands))


class Take:
    """``take`` in two halves: its ``commands``, then ``deliveries`` from their replies.

    Split so that the commands can share a round trip with a batch's outcomes
    (``Settlement.flush_then``).
    """

    def __init__(
        self,
        client: redis.Redis,
        consumer: str,
        worker: str,
        topics: tuple[str, ...],
        count: int,
        lease_seconds: float,
        *,
        schedules: bool = True,
    ) -> None:
        self.client, self.consumer, self.topics, self.count = client, consumer, topics, count
        self.lease_seconds, self.schedules = lease_seconds, schedules
        now = time.time()
        self.lease_until = now + lease_seconds
        self.commands: list[tuple] = []
        if schedules:
            for topic in topics:
                lane = [keys.retry_schedule(topic, consumer), keys.retry_payloads(topic, consumer)]
                self.commands.append(_CLAIM_DUE.command(lane, [now, self.lease_until, count]))
        lanes = [(t,) for t in topics] if is_cluster(client) else [topics]
        self.commands += [_xreadgroup(consumer, worker, lane, count, None) for lane in lanes]

    def deliveries(self, replies: list) -> list[Delivery]:
        """The deliveries the commands took; raise a read's error (after claiming what the others took)."""
        client, consumer, topics = self.client, self.consumer, self.topics
        claims = len(topics) if self.schedules else 0
        work: list[Delivery] = []
        for index, reply in enumerate(replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                work += claim_due(client, topics[index], consumer, self.lease_seconds, self.count)
            elif isinstance(reply, Exception) and index < claims:
                # The retries stay due in their schedule (e.g. Redis is full and refused the
                # lease); the new events read in the same round trip are this worker's now
                # and must be handled, or they would come back later as extra attempts.
                logger.warning("consumer %s: could not claim due retries of %s: %s", consumer, topics[index], reply)
            elif isinstance(reply, Exception):
                raise reply
            elif index < claims:
                work += _claimed(client, topics[index], consumer, reply, self.lease_until)
            else:
                work += _deliveries(reply or [], attempt=1)
        return work


def _xreadgroup(consumer: str, worker: str, topics: tuple[str, ...], count: int, block_ms: int | None) -> tuple:
    command: list[Any] = ["XREADGROUP", "GROUP", keys.group(consumer), worker, "COUNT", count]
    if block_ms is not None:
        command += ["BLOCK", block_ms]
    return (*command, "STREAMS", *[keys.stream(t) for t in topics], *[">"] * len(topics))


def claim_due(client: redis.Redis, topic: str, consumer: str, lease_seconds: float, count: int) -> list[Delivery]:
    """Take due retries and replays from the lane's schedule, leasing them."""
    now = time.time()
    lease_until = now + lease_seconds
    reply = _CLAIM_DUE(
        client,
        [keys.retry_schedule(topic, consumer), keys.retry_payloads(topic, consumer)],
        [now, lease_until, count],
    )
    return _claimed(client, topic, consumer, reply, lease_until)


def _claimed(client: redis.Redis, topic: str, consumer: str, reply: list, lease_until: float) -> list[Delivery]:
    deliveries = []
    for member, raw in zip(reply[::2], reply[1::2], strict=True):
        member = member.decode()
        if not raw:  # payload gone (acked meanwhile by a late worker): drop the ghost entry
            client.zrem(keys.retry_schedule(topic, consumer), member)
            continue
        entry = orjson.loads(raw)
        deliveries.append(
            Delivery(
                topic=topic,
                envelope=entry["e"],
                attempt=entry["attempt"],
                stream_id=entry.get("stream_id", ""),
                member=member,
                failed_event=entry.get("failed_event"),
                lease_until=lease_until,
                replay=entry.get("replay"),
            )
        )
    return deliveries


def reclaim_stale(
    client: redis.Redis, topic: str, consumer: str, worker: str, idle_seconds: float, count: int
) -> list[Delivery]:
    """Take over events another worker held past the ack timeout (it likely died).

    The attempt number is the stream's delivery count, so an event that keeps
    killing its workers still reaches ``max_attempts``.
    """
    stream, group = keys.stream(topic), keys.group(consumer)
    try:
        _, claimed, _deleted = client.xautoclaim(stream, group, worker, int(idle_seconds * 1000), "0-0", count=count)
    except redis.ResponseError as exc:
        if "NOGROUP" in str(exc):
            return []
        raise
    claimed = [(sid, fields) for sid, fields in claimed if fields]  # no fields: trimmed while pending
    if not claimed:
        return []
    counts = {}
    first, last = claimed[0][0], claimed[-1][0]
    for entry in client.xpending_range(stream, group, min=first, max=last, count=len(claimed) * 2, consumername=worker):
        counts[entry["message_id"]] = entry["times_delivered"]
    return [decode_entry(topic, sid, fields, counts.get(sid, 2)) for sid, fields in claimed]


def refresh_hold(
    client: redis.Redis, consumer: str, worker: str, items: list[Delivery], ack_timeout: float
) -> list[Delivery]:
    """Renew ``worker``'s hold on deliveries it has yet to handle, in one round trip.

    A stream entry still pending with ``worker`` gets its idle time reset (its
    delivery count stays); a schedule entry still under the lease ``worker``
    took gets that lease extended to ``ack_timeout`` from now (and its
    ``lease_until`` updated). Return the deliveries still held, in order; the
    others were taken over by another worker and are that worker's to handle.
    """
    lanes: dict[str, list[Delivery]] = {}
    for item in items:
        lanes.setdefault(item.topic, []).append(item)
    lease_until = time.time() + ack_timeout
    scripts = [_hold_script(topic, consumer, worker, lane, lease_until) for topic, lane in lanes.items()]
    replies = call_many(client, [_KEEP_HOLD.command(*script) for script in scripts])
    kept: set[int] = set()
    for lane, script, reply in zip(lanes.values(), scripts, replies):
        if isinstance(reply, redis.exceptions.NoScriptError):
            reply = _KEEP_HOLD(client, *script)
        elif isinstance(reply, Exception):
            raise reply
        kept.update(id(item) for item, held in zip(lane, reply) if held)
    held = [item for item in items if id(item) in kept]
    for item in held:
        if item.member:
            item.lease_until = lease_until
    return held


def _hold_script(
    topic: str, consumer: str, worker: str, lane: list[Delivery], lease_until: float
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of ``_KEEP_HOLD`` for one topic's deliveries."""
    args: list[Any] = [keys.group(consumer), worker, lease_until]
    for item in lane:
        args += [item.member, item.lease_until] if item.member else [item.stream_id, ""]
    return [keys.stream(topic), keys.retry_schedule(topic, consumer)], args


class Refused(redis.RedisError):
    """Redis refused a batch's transaction (``Settlement.flush_then``); the commands sent after it ran anyway."""

    def __init__(self, message: str, replies: list) -> None:
        super().__init__(message)
        self.replies = replies  # of the commands after the transaction


class Settlement:
    """The outcomes of one batch, written in one transaction (MULTI/EXEC).

    Acks, retry schedules, dead letters (into the lane's outbox, see
    ``keys.dead_letters``) and counters are applied together or not at all: an
    event is never released without its retry or dead letter, and a failed
    write (Redis full, gone) leaves every event of the batch pending, to be
    written again by the same worker. On a Redis Cluster each topic's part is
    its own transaction (a topic's keys share one slot); an event's ack and its
    retry always belong to one topic.
    """

    def __init__(self, consumer: str, consumer_id: int = 0) -> None:
        self.consumer = consumer
        self.consumer_id = consumer_id
        self.items: list[Delivery] = []  # every delivery settled here, for renewing holds before a rewrite
        self._acks: dict[str, list[str]] = {}
        self._unscheduled: dict[str, list[str]] = {}
        self._retries: list[tuple[Delivery, float, int]] = []
        self._outbox: dict[str, dict[str, bytes]] = {}  # topic -> member -> entry
        self._tallies: dict[tuple[str, str], int] = {}
        self._also: dict[str, list[tuple]] = {}  # topic -> more commands on its keys (e.g. replay tallies)

    def finish(self, item: Delivery, tally: str) -> None:
        """Remove a delivery for good (handled, skipped or dead-lettered) and count it."""
        self.items.append(item)
        if item.member:
            # A replay-stream entry is released by the replay's tally (``replay_worker.Tally``), not here.
            if not item.member.startswith(REPLAY_STREAM_MEMBER):
                self._unscheduled.setdefault(item.topic, []).append(item.member)
        else:
            self._acks.setdefault(item.topic, []).append(item.stream_id)
        key = (item.topic, tally)
        tallies = self._tallies
        tallies[key] = tallies.get(key, 0) + 1

    def acked(self, items: list[Delivery]) -> None:
        """``finish(item, "acked")`` for each of ``items`` (the worker's hot path: one call per batch)."""
        self.items += items
        lanes: dict[str, list[Delivery]] = {}
        for item in items:
            lanes.setdefault(item.topic, []).append(item)
        for topic, lane in lanes.items():
            stream_ids = [item.stream_id for item in lane if not item.member]
            if len(stream_ids) < len(lane):
                self._unscheduled.setdefault(topic, []).extend(item.member for item in lane if item.member)
            if stream_ids:
                self._acks.setdefault(topic, []).extend(stream_ids)
            self.tally(topic, "acked", len(lane))

    def retry(self, item: Delivery, due: float, attempt: int | None = None) -> None:
        """Move a failed attempt to the lane's schedule (released from the stream).

        The retry is attempt ``attempt`` (default: the next one); an attempt that
        failed for the infrastructure, not the handler, is tried again as the same one.
        """
        self.items.append(item)
        self._retries.append((item, due, item.attempt + 1 if attempt is None else attempt))
        if not item.from_schedule:
            self._acks.setdefault(item.topic, []).append(item.stream_id)

    def dead_letter(self, item: Delivery, error: str, traceback: str) -> None:
        """Release a delivery out of attempts, parking its dead letter in the lane's outbox."""
        entry = {
            "consumer_id": self.consumer_id,
            "e": item.envelope,
            "attempt": item.attempt,
            "stream_id": item.stream_id,
            "member": item.member,
            "failed_event": item.failed_event,
            "error": error,
            "traceback": traceback,
        }
        self._outbox.setdefault(item.topic, {})[item.member or item.stream_id] = orjson.dumps(entry)
        self.finish(item, "dead")

    def resolved(self, item: Delivery) -> None:
        """A replayed delivery was handled: release it, and park its row's resolution in the outbox."""
        entry = {"consumer_id": self.consumer_id, "resolve": item.failed_event}
        self._outbox.setdefault(item.topic, {})[f"resolved:{item.failed_event}"] = orjson.dumps(entry)
        self.finish(item, "acked")

    @property
    def has_outbox(self) -> bool:
        return bool(self._outbox)

    @property
    def releases_only(self) -> bool:
        """True if it holds no retry and no dead letter: only acks, removals and counts."""
        return not self._retries and not self._outbox

    def tally(self, topic: str, field: str, amount: int = 1) -> None:
        key = (topic, field)
        self._tallies[key] = self._tallies.get(key, 0) + amount

    def also(self, topic: str, command: tuple) -> None:
        """Write ``command`` (a Redis command's name, then its arguments) in the batch's transaction.

        Its keys must be ``topic``'s (they share its hash tag), as the
        replays' tallies (``replay_worker.Tally``) are.
        """
        self._also.setdefault(topic, []).append(command)

    def flush(self, client: redis.Redis, extra: dict[tuple[str, str], int] | None = None) -> list[Exception]:
        """Write the batch atomically (``extra``: more counter increments, written with it).

        Raise the Redis error if the transaction was refused or its answer lost:
        then nothing of it was written, or all of it (writing it again is
        harmless but for its counters). Return the errors of single commands
        the transaction ran past (e.g. NOGROUP: the group was lost with Redis's data).
        """
        parts = self._commands(extra or {})
        if not is_cluster(client):
            return _transaction(client, [c for commands in parts.values() for c in commands])
        return [error for commands in parts.values() for error in _transaction(client, commands)]

    def flush_then(
        self, client: redis.Redis, then: list[tuple], extra: dict[tuple[str, str], int] | None = None
    ) -> tuple[list[Exception], list]:
        """``flush``, with the commands ``then`` sent after the transaction in the same round trip.

        Return the transaction's errors (as ``flush``) and the replies to
        ``then``. Raise ``Refused`` (carrying those replies: ``then`` ran
        anyway) if Redis refused the transaction, and the Redis error if the
        connection failed. Not on a Redis Cluster (the batch may span slots).
        """
        transaction = in_transaction([c for commands in self._commands(extra or {}).values() for c in commands])
        replies = call_many(client, [*transaction, *then])
        try:
            executed = transaction_result(replies[: len(transaction)])
        except redis.RedisError as exc:
            raise Refused(str(exc), replies[len(transaction) :]) from exc
        return [reply for reply in executed if isinstance(reply, Exception)], replies[len(transaction) :]

    def _commands(self, extra: dict[tuple[str, str], int]) -> dict[str, list[tuple]]:
        """The batch's commands, by topic (all of one topic's keys share a slot)."""
        consumer = self.consumer
        parts: dict[str, list[tuple]] = {}
        for item, due, attempt in self._retries:
            member = item.member or item.stream_id
            entry = {"e": item.envelope, "attempt": attempt, "stream_id": item.stream_id}
            if item.failed_event is not None:
                entry["failed_event"] = item.failed_event
            if item.replay is not None:
                entry["replay"] = item.replay
            part = parts.setdefault(item.topic, [])
            part.append(("HSET", keys.retry_payloads(item.topic, consumer), member, orjson.dumps(entry)))
            part.append(("ZADD", keys.retry_schedule(item.topic, consumer), due, member))
        for topic, entries in self._outbox.items():
            fields = [value for pair in entries.items() for value in pair]
            parts.setdefault(topic, []).append(("HSET", keys.dead_letters(topic, consumer), *fields))
        for topic, members in self._unscheduled.items():
            part = parts.setdefault(topic, [])
            part.append(("ZREM", keys.retry_schedule(topic, consumer), *members))
            part.append(("HDEL", keys.retry_payloads(topic, consumer), *members))
        for topic, stream_ids in self._acks.items():
            parts.setdefault(topic, []).append(("XACK", keys.stream(topic), keys.group(consumer), *stream_ids))
        tallies = dict(self._tallies)
        for key, amount in extra.items():
            tallies[key] = tallies.get(key, 0) + amount
        for (topic, field), amount in tallies.items():
            parts.setdefault(topic, []).append(("HINCRBY", keys.counters(topic), f"{field}:{consumer}", amount))
        for topic, commands in self._also.items():
            parts.setdefault(topic, []).extend(commands)
        return parts


def _transaction(client: redis.Redis, commands: list[tuple]) -> list[Exception]:
    """Run ``commands`` in one MULTI/EXEC (``connection.call_transaction``: raised if refused as a whole);
    return the run-time errors of single commands.

    Raw commands packed by hiredis: a batch's XACK carries hundreds of ids, which
    redis-py's pipeline would check and encode one by one.
    """
    if not commands:
        return []
    return [reply for reply in call_transaction(client, commands) if isinstance(reply, Exception)]


def queue_replay(pipe: Any, consumer: str, topic: str, envelope: dict, failed_event: int, stream_id: str) -> None:
    """Queue (on ``pipe``) a failed event again for one consumer only, due at once."""
    member = f"replay:{failed_event}"
    entry = {"e": envelope, "attempt": 1, "stream_id": stream_id, "failed_event": failed_event}
    pipe.hset(keys.retry_payloads(topic, consumer), member, orjson.dumps(entry))
    pipe.zadd(keys.retry_schedule(topic, consumer), {member: time.time()})


def _deliveries(replies: list | dict, attempt: int) -> list[Delivery]:
    """Deliveries from an XREADGROUP reply (raw nested lists, or redis-py's parsed forms)."""
    deliveries = []
    append = deliveries.append
    loads = orjson.loads
    for stream_key, entries in replies.items() if isinstance(replies, dict) else replies:
        topic = _topic_of(stream_key)
        if entries and isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list):
            entries = entries[0]  # RESP3 shape: {stream: [[entries]]}
        for sid, fields in entries:
            # The hot path, inlined: an entry EventFlow wrote is exactly ["e", <envelope>].
            if type(fields) is list and len(fields) == 2 and fields[0] == b"e":
                try:
                    envelope = loads(fields[1])
                except orjson.JSONDecodeError:
                    envelope = None  # decode_entry says why
                if type(envelope) is dict and "id" in envelope:
                    append(Delivery(topic, envelope, attempt, sid.decode()))
                    continue
            if fields:  # none: trimmed while pending, nothing left to deliver
                append(decode_entry(topic, sid, fields, attempt))
    return deliveries


def decode_entry(topic: str, sid: bytes, fields: list | dict, attempt: int = 1) -> Delivery:
    """One stream entry as a delivery: its event, or an unreadable one (see ``unreadable_delivery``)."""
    try:
        envelope = orjson.loads(_payload(fields))
    except (ValueError, TypeError):  # truncated JSON, or no payload field at all
        envelope = None
    if type(envelope) is dict and "id" in envelope:
        return Delivery(topic=topic, envelope=envelope, attempt=attempt, stream_id=sid.decode())
    return unreadable_delivery(topic, sid, fields, attempt)


UNREADABLE_TYPE = "eventflow.unreadable"


def unreadable_delivery(topic: str, sid: bytes, fields: list | dict, attempt: int) -> Delivery:
    """A stream entry that is not an EventFlow event: written by another program, or truncated.

    It is never given to a handler: the worker files it at once as a dead letter
    whose event is a placeholder (id ``unreadable:<stream id>``, type
    ``eventflow.unreadable``) carrying the entry's raw fields, as text and as
    base64, so the failed-events page shows what was there.
    """
    pairs = dict(fields) if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2]))
    raw = {_text(k): v if isinstance(v, bytes) else str(v).encode() for k, v in pairs.items()}
    stream_id = sid.decode()
    envelope = {
        "specversion": "1.0",
        "id": f"unreadable:{stream_id}",
        "type": UNREADABLE_TYPE,
        "source": "eventflow",
        "topic": topic,
        "time": "",
        "data": {
            "stream_id": stream_id,
            "fields": {k: _text(v) for k, v in raw.items()},
            "fields_base64": {k: base64.b64encode(v).decode() for k, v in raw.items()},
        },
    }
    reason = _unreadable_reason(raw)
    return Delivery(topic=topic, envelope=envelope, attempt=attempt, stream_id=stream_id, unreadable=reason)


def _unreadable_reason(raw: dict[str, bytes]) -> str:
    payload = raw.get("e")
    if payload is None:
        return f"no 'e' field (fields: {', '.join(sorted(raw))[:200]})"
    try:
        envelope = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"'e' is not valid JSON ({exc}; {len(payload)} bytes)"
    if not isinstance(envelope, dict):
        return f"'e' holds a JSON {type(envelope).__name__}, not an event object"
    return "'e' has no event id"


def _text(value: bytes | str) -> str:
    """Readable text of raw bytes; NUL spelled ``\\x00``, as PostgreSQL's JSON cannot hold it."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    return text.replace("\x00", "\\x00")


def _payload(fields: list | dict | None) -> bytes | None:
    if not fields:
        return None
    if isinstance(fields, dict):
        return fields.get(b"e")
    if fields[0] == b"e":
        return fields[1]
    return dict(zip(fields[::2], fields[1::2])).get(b"e")


def _topic_of(stream_key: bytes | str) -> str:
    key = stream_key.decode() if isinstance(stream_key, bytes) else stream_key
    return key[key.index("{") + 1 : key.index("}")]
