"""Replay jobs: events sent again to one consumer, bounded, throttled, resumable, cancellable.

Two sources, one machine (DESIGN.md, "Replay"): a topic's retained history (its
stream) and a lane's failed events (rows). A job goes:

1. **Planned** (``plan_history`` / ``plan_failed``, then ``start``): the range is
   fixed at once and never open-ended: a history replay ends at the newest
   stream id when it starts (or the earlier ``to`` asked for); a failed-event
   replay ends at the newest row id then, and takes only rows that had failed
   by then, so events that fail again *during* the replay are not picked up by
   it again (the AKHQ redrive loop, akhq#1377). The plan counts what matches
   and says whether retention already cut part of the range.
2. **Fed** by a worker (``replay_worker.Feeder``): the one worker holding the lane's lease
   (``keys.replay_lease``, one running job per lane) copies the matching
   events, a chunk at a time and at most ``rate`` per second, to that one
   consumer only, marked with the job's id and the event's original stream
   id; other subscribers never see them. History goes to the lane's replay
   stream (``keys.replay_stream``), which the consumer's workers read with
   its group like the topic's own stream (``replay_worker.Reader``): an unfiltered chunk is
   copied inside Redis by one script, so a rewind costs about what delivery
   does. Failed events go to the lane's retry schedule, the way a single one
   is replayed (``delivery.queue_replay``). Either way the events then take
   the consumer's own retries and dead letters. One script writes a chunk and
   moves the job's cursor together, so a worker that dies between chunks
   loses nothing and sends nothing twice: the next lease holder resumes at
   the cursor. At most ``WINDOW`` fed events wait unhandled at a time, which
   bounds the replay stream and makes a cancel take effect within a window.
3. **Counted**: workers tally how each replayed delivery ended (handled,
   failed = dead-lettered again, skipped by a type filter) into the job's
   progress hash (``replay_worker.Tally``), written in the batch's settlement
   transaction (``delivery.Settlement.also``) with its acks and retries.
4. **Ended**: done once everything fed has ended; or cancelled (``cancel``),
   which removes the fed events no worker has claimed yet in the same script
   that closes the job, so ``sent`` counts exactly what was handed over.

The workers' side (feeding, reading, counting) is ``eventflow.replay_worker``.

Why workers and not the monitor: feeding is delivery work that grows with the
consumer (the monitor is one elected process, busy sampling every topic, and
its leader may move); the worker already runs that consumer, the lease makes
exactly one of them feed each lane, and any other takes over when it dies.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from django.db.models import Count, F
from django.utils import timezone

from . import keys
from .connection import LuaScript, get_redis
from .errors import Conflict, MalformedRequest, NotFound
from .models import Consumer, FailedEvent, FailedEventQuerySet, Replay, Topic
from .stream_ids import format_id, id_time, parse_id

logger = logging.getLogger(__name__)
audit = logging.getLogger("eventflow.audit")

State = Replay.State
Source = Replay.Source
SCAN_CHUNK = 1000
_MAX_SEQ = 2**64 - 1

# KEYS: schedule, payloads, progress, replay stream. ARGV: now, member prefix, group, replay id.
# Closes the job and takes back what it fed that no worker has claimed yet: schedule entries
# that are due (a claimed one is leased: its score is ahead of now), and replay-stream entries
# of this job past the group's last delivered id. Returns the schedule members taken back
# (their failed events are replayable again), or -1 if the job was not open.
_CANCEL = LuaScript(
    """
if redis.call('HGET', KEYS[3], 'state') ~= 'open' then return -1 end
redis.call('HSET', KEYS[3], 'state', 'cancelled')
local taken = {}
local prefix = ARGV[2]
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  if string.sub(member, 1, #prefix) == prefix then
    redis.call('ZREM', KEYS[1], member)
    redis.call('HDEL', KEYS[2], member)
    taken[#taken + 1] = member
  end
end
local dropped = 0
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[4])
if type(groups) == 'table' and not groups.err then
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == ARGV[3] then
      for _, entry in ipairs(redis.call('XRANGE', KEYS[4], '(' .. last, '+')) do
        local fields = entry[2]
        for i = 1, #fields, 2 do
          if fields[i] == 'r' and fields[i + 1] == ARGV[4] then
            redis.call('XDEL', KEYS[4], entry[1])
            dropped = dropped + 1
          end
        end
      end
    end
  end
end
redis.call('HINCRBY', KEYS[3], 'sent', 0 - #taken - dropped)
return taken
""",
)

# KEYS: replay stream. ARGV: group. Trims what the group was given and acked: every entry
# before its oldest pending one (or, with none pending, up to its last delivered id).
# Returns how many entries it removed.
_TRIM = LuaScript(
    """
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err then return 0 end
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == ARGV[1] then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
    local keep = pending[2]
    if not keep then
      local ms, seq = string.match(last, '(%d+)-(%d+)')
      keep = ms .. '-' .. (tonumber(seq) + 1)
    end
    return redis.call('XTRIM', KEYS[1], 'MINID', keep)
  end
end
return 0
""",
)

STARTS_KEPT = 100  # entries of ``keys.replay_starts``: a feeder only waits for the next one


def trim_replay_stream(topic: str, consumer: str) -> int:
    """Drop what the lane's replay stream delivered and had acked (its Redis identities); return how many."""
    return int(_TRIM(get_redis(), [keys.replay_stream(topic, consumer)], [keys.group(consumer)]))


def announce(job: Replay) -> None:
    """Wake the idle feeders: a job started or was cancelled (they look at the database then, not later)."""
    get_redis().xadd(keys.replay_starts(), {"replay": job.pk}, maxlen=STARTS_KEPT, approximate=True)


# --- stream ids and times --------------------------------------------------------


def bound(value: Any, *, name: str, end: bool) -> tuple[int, int]:
    """A range end from a stream id or an ISO 8601 time; a time's end takes every id of its millisecond.

    Raise MalformedRequest naming the problem.
    """
    if not isinstance(value, str) or not value.strip():
        raise MalformedRequest(
            f"'{name}' must be a stream id (1712345678901-0) or an ISO 8601 time", code=f"bad_{name}"
        )
    value = value.strip()
    if (parts := parse_id(value)) is not None:
        if parts[1] > _MAX_SEQ or parts[0] > _MAX_SEQ:
            raise MalformedRequest(f"'{name}' is out of range", code=f"bad_{name}")
        if end and "-" not in value:
            return parts[0], _MAX_SEQ
        return parts
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRequest(
            f"'{name}' is neither a stream id (1712345678901-0) nor an ISO 8601 time: {value[:60]!r}",
            code=f"bad_{name}",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    ms = max(0, int(moment.timestamp() * 1000))
    return (ms, _MAX_SEQ) if end else (ms, 0)


# --- filters -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """Which events of the range a job sends: all of them unless narrowed.

    ``consumer_types`` are the consumer's own type globs: events it would skip
    are not sent (nor counted) at all.
    """

    types: tuple[str, ...] = ()
    key: str = ""
    field_path: str = ""  # dotted, inside the event's data, e.g. "customer.tier"
    field_value: Any = None
    consumer_types: tuple[str, ...] = ()

    @property
    def narrows(self) -> bool:
        return bool(self.types or self.key or self.field_path or self.consumer_types)

    def matches(self, envelope: dict) -> bool:
        kind = str(envelope.get("type", ""))
        if self.consumer_types and not _any_glob(kind, self.consumer_types):
            return False
        if self.types and not _any_glob(kind, self.types):
            return False
        if self.key and envelope.get("key", envelope.get("subject")) != self.key:
            return False
        return not self.field_path or _lookup(envelope.get("data"), self.field_path) == self.field_value

    def describe(self) -> str:
        parts = []
        if self.types:
            parts.append("type " + " or ".join(self.types))
        if self.key:
            parts.append(f"key {self.key}")
        if self.field_path:
            parts.append(f"data.{self.field_path} = {orjson.dumps(self.field_value).decode()}")
        return ", ".join(parts) or "every event"


_MISSING = object()


def _any_glob(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def filters_of(job: Replay) -> Filters:
    return Filters(
        types=tuple(job.types or ()),
        key=job.key,
        field_path=job.field_path,
        field_value=job.field_value,
        consumer_types=tuple(job.consumer.type_patterns()),
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a lane's replayable failed events a bulk replay takes besides its types.

    The failed-events page's filter, kept on the job (``Replay.selection``) so
    the feeder takes exactly the rows its preview counted. Empty: all of them.
    """

    event_type: str = ""  # exactly this type
    error: str = ""  # the error contains this text, in any case
    since: dt.datetime | None = None  # last failed at or after …
    until: dt.datetime | None = None  # … and before
    event_id: str = ""
    status: str = ""  # one of REPLAYABLE; "": both

    def narrow(self, rows: FailedEventQuerySet) -> FailedEventQuerySet:
        return rows.matching(**{name: getattr(self, name) for name in self.__slots__})

    def as_json(self) -> dict[str, str]:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return {name: v.isoformat() if isinstance(v, dt.datetime) else v for name, v in fields.items() if v}

    @classmethod
    def from_json(cls, data: dict[str, str] | None) -> Selection:
        data = dict(data or {})
        for name in ("since", "until"):
            if data.get(name):
                data[name] = dt.datetime.fromisoformat(data[name])
        return cls(**data)

    def describe(self) -> str:
        parts = [f"type {self.event_type}"] if self.event_type else []
        if self.error:
            parts.append(f"error contains {self.error!r}")
        if self.since:
            parts.append(f"failed since {_iso(self.since)}")
        if self.until:
            parts.append(f"failed before {_iso(self.until)}")
        if self.event_id:
            parts.append(f"event {self.event_id}")
        if self.status:
            parts.append(f"status {self.status}")
        return ", ".join(parts)


def describe(job: Replay) -> str:
    """What a job sends, in words: its filters, and for failed events its selection."""
    return _words(filters_of(job), Selection.from_json(job.selection))


def _words(filters: Filters, selection: Selection) -> str:
    chosen = selection.describe()
    if not chosen:
        return filters.describe()
    return f"{filters.describe()}, {chosen}" if filters.types or filters.key or filters.field_path else chosen


# --- planning ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What a replay would send: the preview (dry run) and the figures a job starts with."""

    source: str
    consumer: str
    topic: str
    from_id: str
    to_id: str
    matching: int
    first_match: str = ""
    last_match: str = ""
    first_retained: str = ""  # the stream's oldest entry now ("" if it is empty)
    retention_cut: str = ""  # "" or the sentence saying what retention already removed
    filters: Filters = field(default_factory=Filters)
    selection: Selection = field(default_factory=Selection)  # failed events only

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "consumer": self.consumer,
            "topic": self.topic,
            "from": self.from_id,
            "to": self.to_id,
            "matching": self.matching,
            "first_match": self.first_match or None,
            "first_match_time": _iso(id_time(self.first_match)) if self.source == Source.HISTORY else None,
            "last_match": self.last_match or None,
            "last_match_time": _iso(id_time(self.last_match)) if self.source == Source.HISTORY else None,
            "first_retained": self.first_retained or None,
            "retention_cut": self.retention_cut or None,
            "filters": self.filters.describe(),
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def plan_history(
    consumer: Consumer, topic: Topic, start: tuple[int, int], end: tuple[int, int] | None, filters: Filters
) -> Plan:
    """Count what a rewind of ``consumer`` over ``topic`` from ``start`` to ``end`` would send.

    The end is the newest entry now when ``end`` is None or later (never open);
    the count scans the range once, chunk by chunk.
    """
    client = get_redis()
    first, newest, trimmed = _stream_ends(client, topic.stream_name)
    last = min(end, newest) if end is not None else newest
    matching, first_match, last_match = 0, "", ""
    for sid, envelope in _scan(client, topic.stream_name, format_id(start), format_id(last), filters):
        if envelope is not None and filters.matches(envelope):
            matching += 1
            first_match = first_match or sid
            last_match = sid
    return Plan(
        source=Source.HISTORY,
        consumer=consumer.name,
        topic=topic.name,
        from_id=format_id(start),
        to_id=format_id(last),
        matching=matching,
        first_match=first_match,
        last_match=last_match,
        first_retained=format_id(first) if first else "",
        retention_cut=_retention_cut(start, first, newest, trimmed),
        filters=filters,
    )


def _stream_ends(client: redis.Redis, topic: str) -> tuple[tuple[int, int] | None, tuple[int, int], int]:
    """The stream's first entry (None when empty), its newest id ever added, and how many it trimmed."""
    try:
        info = client.xinfo_stream(keys.stream(topic))
    except redis.ResponseError:  # no stream yet: nothing was ever published
        return None, (0, 0), 0
    first = info.get("first-entry")
    last_id = info.get("last-generated-id") or info.get("last-entry", [b"0-0"])[0]
    added = info.get("entries-added")
    trimmed = max(0, int(added) - int(info["length"])) if added is not None else 0
    first_id = parse_id(first[0].decode()) if first else None
    newest = parse_id(last_id.decode() if isinstance(last_id, bytes) else str(last_id)) or (0, 0)
    return first_id, newest, trimmed


def _retention_cut(start: tuple[int, int], first: tuple[int, int] | None, newest: tuple[int, int], trimmed: int) -> str:
    """Say so, with figures, when retention already removed the start of the requested range."""
    if trimmed == 0 or start > newest:
        return ""
    if first is None:
        return f"Retention already cut the whole range: the stream is empty ({trimmed:,} events trimmed so far)."
    if start >= first:
        return ""
    gap = (first[0] - start[0]) / 1000
    since = id_time(format_id(first))
    return (
        f"Retention already cut part of the range: the stream now starts at {format_id(first)} "
        f"({_iso(since)}), {_duration(gap)} after the requested start; {trimmed:,} events of this topic "
        "were trimmed so far, and those of them in the range cannot be replayed."
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _scan(
    client: redis.Redis, topic: str, start: str, end: str, filters: Filters, chunk: int = SCAN_CHUNK
) -> Iterator[tuple[str, dict | None]]:
    """(stream id, envelope) for every entry from ``start`` to ``end``, both included.

    Without filters the envelope is not decoded (None): counting needs only the ids.
    """
    stream = keys.stream(topic)
    low = start
    while True:
        entries = client.xrange(stream, min=low, max=end, count=chunk)
        for sid, fields in entries:
            payload = fields.get(b"e")
            if payload is not None:
                yield sid.decode(), (orjson.loads(payload) if filters.narrows else {})
        if len(entries) < chunk:
            return
        low = "(" + entries[-1][0].decode()


def plan_failed(consumer: Consumer, topic: Topic, filters: Filters, selection: Selection = Selection()) -> Plan:
    """Count the lane's replayable failed events a bulk replay would send (ids up to the newest now)."""
    rows = failed_rows(consumer, topic, filters, selection)
    newest = rows.order_by("-pk").values_list("pk", flat=True).first() or 0
    oldest = rows.order_by("pk").values_list("pk", flat=True).first() or 0
    return Plan(
        source=Source.FAILED,
        consumer=consumer.name,
        topic=topic.name,
        from_id=str(oldest),
        to_id=str(newest),
        matching=rows.count(),
        first_match=str(oldest) if oldest else "",
        last_match=str(newest) if newest else "",
        filters=filters,
        selection=selection,
    )


def failed_rows(consumer: Consumer, topic: Topic, filters: Filters, selection: Selection = Selection()) -> Any:
    rows = selection.narrow(FailedEvent.objects.replayable().filter(consumer=consumer, topic=topic))
    if filters.types:
        kinds = rows.values("event_type").annotate(n=Count("pk")).values_list("event_type", flat=True)
        rows = rows.filter(event_type__in=[k for k in kinds if _any_glob(k, filters.types)])
    return rows


# --- starting, cancelling, reading ---------------------------------------------------------


def start(plan: Plan, consumer: Consumer, topic: Topic, *, user: Any, reason: str, rate: float | None) -> Replay:
    """Create the job for ``plan`` (the audit record) and open it for the lane's feeder."""
    by = user if user is not None and getattr(user, "is_authenticated", False) else None
    filters = plan.filters
    job = Replay.objects.create(
        source=plan.source,
        consumer=consumer,
        topic=topic,
        from_id=plan.from_id,
        to_id=plan.to_id,
        types=list(filters.types),
        key=filters.key,
        field_path=filters.field_path,
        field_value=filters.field_value,
        selection=plan.selection.as_json(),
        rate=rate,
        reason=reason,
        note=plan.retention_cut,
        matched=plan.matching,
        requested_by=by,
    )
    progress = keys.replay_progress(topic.stream_name, job.pk)
    get_redis().hset(progress, mapping={"state": "open", "cursor": "", "sent": 0, "handled": 0, "failed": 0})
    announce(job)
    audit.info(
        "replay %s started by %s: %s %s..%s of %s to %s (%s), %d matching, rate %s, reason: %s",
        job.pk, by or "-", plan.source, plan.from_id, plan.to_id, topic.name, consumer.name,
        _words(filters, plan.selection), plan.matching, rate or "unlimited", reason,
    )  # fmt: skip
    return job


def cancel(job: Replay, user: Any = None) -> Replay:
    """Stop a planned or running job now; raise Conflict if it already ended.

    Fed events a worker already claimed are still handled (and counted); the
    rest are taken back, and ``sent`` drops by as many.
    """
    by = user if user is not None and getattr(user, "is_authenticated", False) else None
    closed = Replay.objects.filter(pk=job.pk, state__in=[State.PLANNED, State.RUNNING]).update(
        state=State.CANCELLED, cancelled_by=by, ended_at=timezone.now()
    )
    if not closed:
        job.refresh_from_db()
        raise Conflict(f"replay {job.pk} is already {job.state}; only a planned or running one can be cancelled")
    topic, consumer = job.topic.stream_name, job.consumer.group_name  # their Redis identities
    lane = [
        keys.retry_schedule(topic, consumer),
        keys.retry_payloads(topic, consumer),
        keys.replay_progress(topic, job.pk),
        keys.replay_stream(topic, consumer),
    ]
    taken = _CANCEL(get_redis(), lane, [time.time(), member_prefix(job.pk), keys.group(consumer), job.pk])
    if isinstance(taken, list):
        restore_failed_rows([m.decode() for m in taken])
    trim_replay_stream(topic, consumer)
    sync(job)
    announce(job)
    audit.info("replay %s cancelled by %s", job.pk, by or "-")
    job.refresh_from_db()
    return job


def member_prefix(replay_id: int) -> str:
    """How the schedule members a job fed start (failed events: this and "f<row id>")."""
    return f"rp:{replay_id}:"


def restore_failed_rows(members: list[str]) -> None:
    """Failed events taken back from a cancelled job are replayable again."""
    pks = [int(m.rsplit(":f", 1)[1]) for m in members if ":f" in m]
    if pks:
        FailedEvent.objects.filter(pk__in=pks, status=FailedEvent.Status.REPLAYING).update(
            status=FailedEvent.Status.FAILED, replay_count=F("replay_count") - 1
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """A job as the API, the dashboard and its tests read it."""

    id: int
    source: str
    state: str
    consumer: str
    topic: str
    from_id: str
    to_id: str
    filters: str
    rate: float | None
    matched: int
    sent: int
    handled: int
    failed: int
    reason: str
    note: str
    requested_by: str | None
    cancelled_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None

    @property
    def ended(self) -> int:
        return self.handled + self.failed

    @property
    def percent(self) -> int:
        """How far the job is, by events that ended of those it will send (100 when it ended)."""
        if self.state in (State.DONE, State.CANCELLED, State.FAILED):
            return 100
        return min(100, int(100 * self.ended / self.matched)) if self.matched else 0

    @property
    def is_active(self) -> bool:
        return self.state in (State.PLANNED, State.RUNNING)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replay": self.id,
            "source": self.source,
            "state": self.state,
            "consumer": self.consumer,
            "topic": self.topic,
            "from": self.from_id,
            "to": self.to_id,
            "filters": self.filters,
            "rate": self.rate,
            "matched": self.matched,
            "sent": self.sent,
            "handled": self.handled,
            "failed": self.failed,
            "percent": self.percent,
            "reason": self.reason,
            "note": self.note or None,
            "requested_by": self.requested_by,
            "cancelled_by": self.cancelled_by,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
        }


def progress(job: Replay) -> Progress:
    """The job's state, with live counts from Redis while it runs (its row's once it ended)."""
    counts = {"sent": job.sent, "handled": job.handled, "failed": job.failed}
    live = read_live(job)
    if live is not None:
        counts = {name: live[name] for name in counts}
    return Progress(
        id=job.pk,
        source=job.source,
        state=job.state,
        consumer=job.consumer.name,
        topic=job.topic.name,
        from_id=job.from_id,
        to_id=job.to_id,
        filters=describe(job),
        rate=job.rate,
        matched=job.matched,
        reason=job.reason,
        note=job.note,
        requested_by=job.requested_by.get_username() if job.requested_by else None,
        cancelled_by=job.cancelled_by.get_username() if job.cancelled_by else None,
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        **counts,
    )


def read_live(job: Replay) -> dict[str, Any] | None:
    """The job's progress hash, decoded; None if Redis has none (ended long ago, or lost)."""
    try:
        raw = get_redis().hgetall(keys.replay_progress(job.topic.stream_name, job.pk))
    except redis.RedisError:
        return None
    if not raw:
        return None
    values = {k.decode(): v.decode() for k, v in raw.items()}
    number = lambda name: int(values.get(name) or 0)  # noqa: E731
    return {
        "state": values.get("state", ""),
        "cursor": values.get("cursor", ""),
        "fed": values.get("fed") == "1",
        "sent": number("sent"),
        # Skipped (the consumer's type filter changed since the plan): acked unhandled, as it would be.
        "handled": number("handled") + number("skipped"),
        "failed": number("failed"),
    }


def sync(job: Replay) -> None:
    """Copy the job's live counts and cursor to its row (the row outlives Redis's data)."""
    live = read_live(job)
    if live is None:
        return
    Replay.objects.filter(pk=job.pk).update(
        sent=live["sent"], handled=live["handled"], failed=live["failed"], cursor=live["cursor"]
    )


def lookup(replay_id: int) -> Replay:
    job = (
        Replay.objects.select_related("consumer", "topic", "requested_by", "cancelled_by").filter(pk=replay_id).first()
    )
    if job is None:
        raise NotFound(f"no replay {replay_id}")
    return job


# --- lineage ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentAgain:
    """One replay job that sent an event again: to whom, by whom, why."""

    replay: int
    consumer: str
    state: str
    requested_by: str | None
    reason: str
    created_at: dt.datetime


def sent_again(topic: str, stream_id: str, envelope: dict, limit: int = 200) -> list[SentAgain]:
    """Every replay job that sent this event again (newest first): it lies in the job's range,
    matches its filters, and the job's cursor went past it."""
    sid = parse_id(stream_id)
    if sid is None:
        return []
    jobs = (
        Replay.objects.filter(topic__name=topic)
        .select_related("consumer", "topic", "requested_by")
        .order_by("-created_at", "-id")[:limit]
    )
    found = []
    for job in jobs:
        if _job_sent(job, sid, stream_id, envelope):
            who = job.requested_by.get_username() if job.requested_by else None
            found.append(SentAgain(job.pk, job.consumer.name, job.state, who, job.reason, job.created_at))
    return found


def _job_sent(job: Replay, sid: tuple[int, int], stream_id: str, envelope: dict) -> bool:
    if job.source in (Source.FAILED, Source.EDIT):  # their ranges are of failed-event ids
        pks = FailedEvent.objects.filter(
            consumer=job.consumer, topic=job.topic, stream_id=stream_id, replay_count__gt=0
        ).values_list("pk", flat=True)
        reached = _reached(job)
        return any(int(job.from_id or 0) <= pk <= min(int(job.to_id or 0), reached) for pk in pks)
    low, high = parse_id(job.from_id), parse_id(job.to_id)
    if low is None or high is None or not low <= sid <= high:
        return False
    cursor = parse_id(_cursor(job))
    return cursor is not None and sid <= cursor and filters_of(job).matches(envelope)


def _cursor(job: Replay) -> str:
    live = read_live(job) if job.is_active else None
    return (live or {}).get("cursor") or job.cursor


def _reached(job: Replay) -> int:
    cursor = _cursor(job)
    return int(cursor) if cursor.isdigit() else 0
