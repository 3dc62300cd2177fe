"""The workers' side of replay jobs (``eventflow.replays``): feeding, reading and counting.

- ``Feeder`` (a thread of each worker process): takes the lease of each lane
  with an open job, feeds its chunks (history to the lane's replay stream,
  failed events to its retry schedule) within the job's rate and window, and
  ends the job when everything fed has ended.
- ``Reader`` (in each consumer runner): reads the replay streams of the
  lanes a feeder holds, with the consumer's group.
- ``Tally`` (in each consumer runner): counts how replayed deliveries ended
  and releases their replay-stream entries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import conf, keys, replays
from .connection import LuaScript, call, call_many, get_redis
from .delivery import REPLAY_STREAM_MEMBER
from .models import FailedEvent, Replay
from .replays import Filters, Source, State

logger = logging.getLogger(__name__)

FEEDER_THREAD = "replay feeder"  # a space: no consumer can have this name
WINDOW = 20_000  # fed events of one job waiting to be handled, at most (a cancel drops the unread ones)
CHUNK = 1000  # events per feeding round trip
LEASE_SECONDS = 10.0  # a dead feeder's job waits this long before another worker resumes it
JOB_REFRESH = 0.25  # seconds between looks in the database for jobs, besides the starts announced to it
STARTS_READ = 100  # announcements read at once (one is enough to wake; the rest are skipped)
SYNC_EVERY = 0.5  # seconds between copies of a running job's counts to its row

# KEYS: schedule, payloads, progress. ARGV: now, new cursor, '1' if the range is now all fed,
# then member, payload pairs. Returns how many were queued, or -1 if the job is no longer open.
_FEED = LuaScript(
    """
if redis.call('HGET', KEYS[3], 'state') ~= 'open' then return -1 end
local n = 0
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  n = n + 1
end
redis.call('HSET', KEYS[3], 'cursor', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[3], 'fed', '1') end
redis.call('HINCRBY', KEYS[3], 'sent', n)
return n
""",
)

# KEYS: stream, replay stream, progress. ARGV: low ('<id>' or '(<id>'), high, count, replay id.
# Copies the next entries of the range to the replay stream, inside Redis; moves the cursor.
# Returns how many were copied, or -1 if the job is no longer open.
_COPY = LuaScript(
    """
if redis.call('HGET', KEYS[3], 'state') ~= 'open' then return -1 end
local count = tonumber(ARGV[3])
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', count)
local n = 0
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then
      redis.call('XADD', KEYS[2], '*', 'e', fields[i + 1], 's', entry[1], 'r', ARGV[4])
      n = n + 1
      break
    end
  end
end
local last = entries[#entries]
if last then redis.call('HSET', KEYS[3], 'cursor', last[1]) end
if #entries < count or (last and last[1] == ARGV[2]) then redis.call('HSET', KEYS[3], 'fed', '1') end
redis.call('HINCRBY', KEYS[3], 'sent', n)
return n
""",
)

# KEYS: replay stream, progress. ARGV: new cursor, '1' if the range is now all fed, replay id,
# then stream id, envelope pairs (chosen by a filter). Returns how many, or -1 if not open.
_SEND = LuaScript(
    """
if redis.call('HGET', KEYS[2], 'state') ~= 'open' then return -1 end
local n = 0
for i = 4, #ARGV, 2 do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 's', ARGV[i], 'r', ARGV[3])
  n = n + 1
end
redis.call('HSET', KEYS[2], 'cursor', ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[2], 'fed', '1') end
redis.call('HINCRBY', KEYS[2], 'sent', n)
return n
""",
)

# KEYS: lease. ARGV: holder, ttl ms. Returns 1 if the holder has (or now took) the lease.
_LEASE = LuaScript(
    """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
""",
)

_RELEASE = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)


class Tally:
    """How one consumer's replayed deliveries ended, per job, written with each batch's settlement.

    It also releases replay-stream entries (acked; the feeder trims them,
    ``replays.trim_replay_stream``) once their delivery ended or moved to the
    retry schedule. ``into`` hands the counts to the batch's ``Settlement``,
    so they are written in its transaction:
    an outcome is counted exactly when it is written (a refused batch is
    written again whole, its counts with it).
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self._counts: dict[tuple[str, int, str], int] = {}
        self._released: dict[str, list[str]] = {}

    def count(self, item: Any, outcome: str) -> None:
        """Count one delivery's end (``handled``, ``failed`` or ``skipped``) if a replay job sent it."""
        if item.replay is None:
            return
        key = (item.topic, item.replay, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1
        self.release(item)

    def release(self, item: Any) -> None:
        """The delivery left its replay-stream entry (it ended, or waits in the retry schedule)."""
        if item.member.startswith(REPLAY_STREAM_MEMBER):
            self._released.setdefault(item.topic, []).append(item.member[len(REPLAY_STREAM_MEMBER) :])

    def into(self, settlement: Any) -> None:
        """Add the writes counted so far to ``settlement`` (a ``delivery.Settlement``); the tally starts afresh."""
        group = keys.group(self.consumer)
        for topic, entry_ids in self._released.items():
            stream = keys.replay_stream(topic, self.consumer)
            settlement.also(topic, ("xack", stream, group, *entry_ids))
        for (topic, replay_id, outcome), amount in self._counts.items():
            settlement.also(topic, ("hincrby", keys.replay_progress(topic, replay_id), outcome, amount))
        self._counts, self._released = {}, {}


# --- workers: reading the replay streams -------------------------------------------------


READ_CHECK = 0.25  # seconds between looks at which of a consumer's lanes a feeder holds
FAST_FACTOR = 4
WAIT_MS = 50


class Reader:
    """Reads one consumer's replay streams for one runner, with the consumer's group.

    Only lanes a feeder holds now (their lease exists) are read, looked up
    every ``READ_CHECK`` seconds, so a consumer without a replay costs one
    small round trip four times a second. Entries a worker took and never
    released (it died, or a slow batch outlasted its hold) are taken over
    after the ack timeout, with their delivery count as the attempt.

    The batch's tally travels in its settlement's transaction
    (``Tally.into``): a rewind costs one round trip per batch more than
    delivery (this read), not two. A consumer at its full batch size (a fast
    one) reads ``FAST_FACTOR`` times that from its replay stream.
    """

    def __init__(self, consumer: str, worker: str) -> None:
        self.consumer = consumer
        self.worker = worker
        self._lanes: list[str] = []
        self._checked = 0.0
        self._reclaimed = 0.0

    def take(self, client: redis.Redis, spec: Any, count: int) -> list[Any]:
        """Deliveries from the held lanes' replay streams."""
        now = time.monotonic()
        if now >= self._checked:
            self._lanes = self._held_lanes(client, spec.topics)
            self._checked = now + READ_CHECK
        if not self._lanes:
            return []
        work = []
        if now >= self._reclaimed:
            self._reclaimed = now + max(READ_CHECK, spec.ack_timeout / 4)
            work += self._reclaim(client, spec.ack_timeout, count)
        if count >= conf.get("BATCH_SIZE"):
            count *= FAST_FACTOR
        group = keys.group(self.consumer)
        commands = [
            (
                "XREADGROUP",
                "GROUP",
                group,
                self.worker,
                "COUNT",
                count,
                "STREAMS",
                keys.replay_stream(t, self.consumer),
                ">",
            )
            for t in self._lanes
        ]
        replies = call_many(client, commands)
        for topic, reply in zip(self._lanes, replies):
            if isinstance(reply, Exception):
                self._checked = 0.0  # the stream went (Redis lost its data): look again
                continue
            work += _stream_deliveries(topic, _entries(reply), attempts={})
        return work

    def look_again(self) -> None:
        """The runner found no work and will block: look at the lanes on its next step, not ``READ_CHECK`` later."""
        self._checked = 0.0

    @property
    def holding(self) -> bool:
        """Whether a feeder holds one of the consumer's lanes (as last looked)."""
        return bool(self._lanes)

    def wait(self, client: redis.Redis, spec: Any, count: int, block_ms: int) -> list[Any]:
        """Block (at most ``WAIT_MS``) on the first held lane's replay stream.

        New events of the topics wait that long at most: the next step reads them.
        """
        stream = keys.replay_stream(self._lanes[0], self.consumer)
        command = ("XREADGROUP", "GROUP", keys.group(self.consumer), self.worker, "COUNT", count)
        try:
            reply = call(client, *command, "BLOCK", min(block_ms, WAIT_MS), "STREAMS", stream, ">")
        except redis.ResponseError:
            self._checked = 0.0
            return []
        return _stream_deliveries(self._lanes[0], _entries(reply), attempts={})

    def _held_lanes(self, client: redis.Redis, topics: tuple[str, ...]) -> list[str]:
        replies = call_many(client, [("EXISTS", keys.replay_lease(t, self.consumer)) for t in topics])
        return [t for t, held in zip(topics, replies) if held == 1]

    def _reclaim(self, client: redis.Redis, idle_seconds: float, count: int) -> list[Any]:
        work = []
        group = keys.group(self.consumer)
        for topic in self._lanes:
            stream = keys.replay_stream(topic, self.consumer)
            try:
                _, claimed, _ = client.xautoclaim(
                    stream, group, self.worker, int(idle_seconds * 1000), "0-0", count=count
                )
            except redis.ResponseError:
                continue
            claimed = [(sid, fields) for sid, fields in claimed if fields]
            if not claimed:
                continue
            pending = client.xpending_range(
                stream, group, min=claimed[0][0], max=claimed[-1][0], count=len(claimed) * 2
            )
            attempts = {entry["message_id"]: entry["times_delivered"] for entry in pending}
            work += _stream_deliveries(topic, claimed, attempts)
        return work


def _entries(reply: Any) -> list:
    """The entries of a one-stream XREADGROUP reply (RESP2 list or RESP3 map), or []."""
    if not reply:
        return []
    if isinstance(reply, dict):
        entries = next(iter(reply.values()))
        return (
            entries[0]
            if entries and isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list)
            else entries
        )
    return reply[0][1]


def _stream_deliveries(topic: str, entries: list, attempts: dict) -> list[Any]:
    """Deliveries from replay-stream entries (fields ``e``, ``s``, ``r``, as the feeder writes them)."""
    from .delivery import Delivery

    deliveries = []
    append = deliveries.append
    loads = orjson.loads
    for entry_id, raw in entries:
        if type(raw) is list and len(raw) == 6 and raw[0] == b"e":  # the feeder's own order: no dict needed
            payload, sid, rid = raw[1], raw[3], raw[5]
        else:
            fields = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2]))
            payload, sid, rid = fields.get(b"e"), fields.get(b"s", b""), fields.get(b"r", b"0")
        if payload is None:
            continue
        append(
            Delivery(
                topic,
                loads(payload),
                attempts.get(entry_id, 1) if attempts else 1,
                sid.decode(),
                member=REPLAY_STREAM_MEMBER + entry_id.decode(),
                replay=int(rid),
            )
        )
    return deliveries


# --- workers: feeding --------------------------------------------------------------------------


@dataclass(slots=True)
class _Running:
    """A feeder's own bookkeeping for one job it holds."""

    job: Replay
    filters: Filters
    tokens: float = 0.0
    refilled: float = 0.0
    synced: float = 0.0
    leased_until: float = 0.0


class Feeder:
    """Feeds the replay jobs of one worker's consumers; ``run_once`` is one step, ``run`` the loop."""

    def __init__(self, worker_id: str, consumers: Callable[[], list[str]]) -> None:
        self.worker_id = worker_id
        self.consumers = consumers
        self._jobs: dict[int, _Running] = {}
        self._looked = 0.0
        self._seen_start: bytes | None = None  # the newest entry of ``keys.replay_starts`` seen

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set; then let go of every lease (another worker resumes at once)."""
        while not stop.is_set():
            try:
                fed = self.run_once()
                if not fed and not self._jobs:
                    self._wait_for_a_start()
                    continue
            except Exception as exc:  # noqa: BLE001 - the feeder outlives Redis and database hiccups
                logger.warning("replay feeder %s: %s", self.worker_id, exc)
                fed = False
                stop.wait(1.0)
            if not fed:
                stop.wait(0.005)
        self.release_all()

    def _wait_for_a_start(self) -> None:
        """Idle: block until a job starts or is cancelled (``replays.announce``), at most ``JOB_REFRESH``."""
        client = get_redis(blocking=True)
        if self._seen_start is None:
            last = client.xrevrange(keys.replay_starts(), count=1)
            self._seen_start = last[0][0] if last else b"0-0"
        reply = client.xread({keys.replay_starts(): self._seen_start}, count=STARTS_READ, block=int(JOB_REFRESH * 1000))
        for _, entries in reply or []:
            if entries:
                self._seen_start = entries[-1][0]
                self._looked = 0.0  # look at the database now

    def run_once(self) -> bool:
        """Feed one chunk of every job this worker holds; return True if any event was fed."""
        now = time.monotonic()
        if now >= self._looked:
            self._look_for_jobs()
            self._looked = now + JOB_REFRESH
        fed = False
        for running in list(self._jobs.values()):
            fed = self._step(running) or fed
        return fed

    def release_all(self) -> None:
        for running in list(self._jobs.values()):
            self._let_go(running)

    def _look_for_jobs(self) -> None:
        """Take up the oldest open job of each lane of this worker's consumers; drop jobs closed meanwhile."""
        names = self.consumers()
        open_jobs = (
            Replay.objects.filter(state__in=[State.PLANNED, State.RUNNING], consumer__name__in=names)
            .select_related("consumer", "topic", "requested_by")
            .order_by("created_at", "id")
        )
        lanes: dict[tuple[int, int], Replay] = {}
        for job in open_jobs:
            lanes.setdefault((job.consumer_id, job.topic_id), job)
        wanted = {job.pk: job for job in lanes.values()}
        for pk in set(self._jobs) - set(wanted):  # ended meanwhile (cancelled): what it left is trimmed
            gone = self._jobs[pk]
            replays.trim_replay_stream(gone.job.topic.stream_name, gone.job.consumer.group_name)
            self._let_go(gone)
        for pk, job in wanted.items():
            if pk not in self._jobs:
                self._jobs[pk] = _Running(job, replays.filters_of(job), refilled=time.monotonic())

    def _step(self, running: _Running) -> bool:
        job = running.job
        if not self._hold(running):
            return False
        live = replays.read_live(job)
        if live is None or live["state"] != "open":
            self._close(running, live)
            return False
        ended = live["handled"] + live["failed"]
        if live["fed"] and ended >= live["sent"]:
            self._finish(running)
            return False
        self._mark_running(running)
        room = self._room(running, WINDOW - (live["sent"] - ended))
        fed = self._feed(running, live["cursor"], room) if room > 0 and not live["fed"] else 0
        if time.monotonic() >= running.synced:
            replays.sync(job)
            replays.trim_replay_stream(job.topic.stream_name, job.consumer.group_name)
            running.synced = time.monotonic() + SYNC_EVERY
        return fed > 0

    def _hold(self, running: _Running) -> bool:
        """Take or renew the lane's lease (renewed at most once a second)."""
        now = time.monotonic()
        if now < running.leased_until:
            return True
        job = running.job
        lease = keys.replay_lease(job.topic.stream_name, job.consumer.group_name)
        if not _LEASE(get_redis(), [lease], [self._holder(job), int(LEASE_SECONDS * 1000)]):
            return False
        running.leased_until = now + min(1.0, LEASE_SECONDS / 3)
        return True

    def _holder(self, job: Replay) -> str:
        return f"{self.worker_id}:{job.pk}"

    def _let_go(self, running: _Running) -> None:
        job = running.job
        try:
            lease = keys.replay_lease(job.topic.stream_name, job.consumer.group_name)
            _RELEASE(get_redis(), [lease], [self._holder(job)])
        except redis.RedisError:
            pass  # it expires on its own
        self._jobs.pop(job.pk, None)

    def _room(self, running: _Running, window: int) -> int:
        """How many events may go now: the window's room, within the job's rate (a token bucket)."""
        room = min(window, CHUNK)
        rate = running.job.rate
        if not rate:
            return room
        now = time.monotonic()
        # A bucket of one second: it starts empty, so the rate holds from the first second,
        # and a feeder held up (a full window, a slow step) catches up by at most a second.
        running.tokens = min(max(1.0, rate), running.tokens + (now - running.refilled) * rate)
        running.refilled = now
        return min(room, int(running.tokens))

    def _feed(self, running: _Running, cursor: str, room: int) -> int:
        job = running.job
        if job.source == Source.FAILED:
            queued = self._feed_failed(running, cursor, room)
        elif running.filters.narrows:
            queued = self._feed_chosen(running, cursor, room)
        else:
            topic, consumer = job.topic.stream_name, job.consumer.group_name
            lane = [keys.stream(topic), keys.replay_stream(topic, consumer), keys.replay_progress(topic, job.pk)]
            queued = _COPY(get_redis(), lane, ["(" + cursor if cursor else job.from_id, job.to_id, room, job.pk])
        if running.job.rate and queued > 0:
            running.tokens -= queued
        return max(0, queued)

    def _feed_chosen(self, running: _Running, cursor: str, room: int) -> int:
        """Send the next ``room`` entries of the range that match the job's filters."""
        job, filters = running.job, running.filters
        low = "(" + cursor if cursor else job.from_id
        entries = get_redis().xrange(keys.stream(job.topic.stream_name), min=low, max=job.to_id, count=room)
        args: list[Any] = [entries[-1][0] if entries else cursor, "0", job.pk]
        for sid, fields in entries:
            payload = fields.get(b"e")
            if payload is not None and filters.matches(orjson.loads(payload)):
                args += [sid, payload]
        if len(entries) < room or (entries and entries[-1][0].decode() == job.to_id):
            args[1] = "1"
        topic, consumer = job.topic.stream_name, job.consumer.group_name
        lane = [keys.replay_stream(topic, consumer), keys.replay_progress(topic, job.pk)]
        return _SEND(get_redis(), lane, args)

    def _feed_failed(self, running: _Running, cursor: str, room: int) -> int:
        job = running.job
        members, new_cursor, done, rows = self._failed_chunk(running, cursor, room)
        topic, consumer = job.topic.stream_name, job.consumer.group_name
        lane = [
            keys.retry_schedule(topic, consumer),
            keys.retry_payloads(topic, consumer),
            keys.replay_progress(topic, job.pk),
        ]
        args: list[Any] = [time.time(), new_cursor, "1" if done else "0"]
        for member, payload in members:
            args += [member, payload]
        queued = _FEED(get_redis(), lane, args)
        if queued < 0 and rows:
            replays.restore_failed_rows([member for member, _ in members])
        return queued

    def _failed_chunk(
        self, running: _Running, cursor: str, room: int
    ) -> tuple[list[tuple[str, bytes]], str, bool, list[FailedEvent]]:
        """The next ``room`` replayable rows, flipped to replaying, as schedule entries."""
        job = running.job
        rows = list(
            replays.failed_rows(job.consumer, job.topic, running.filters, replays.Selection.from_json(job.selection))
            .filter(pk__gt=int(cursor or 0), pk__lte=int(job.to_id or 0), last_failed_at__lte=job.created_at)
            .order_by("pk")[:room]
        )
        mine = _flip_to_replaying(rows, job.requested_by)
        members = [
            (
                f"{replays.member_prefix(job.pk)}f{row.pk}",
                orjson.dumps(
                    {"e": row.event, "attempt": 1, "stream_id": row.stream_id, "failed_event": row.pk, "replay": job.pk}
                ),
            )
            for row in mine
        ]
        new_cursor = str(rows[-1].pk) if rows else cursor
        return members, new_cursor, len(rows) < room, mine

    def _mark_running(self, running: _Running) -> None:
        job = running.job
        if job.state == State.PLANNED:
            _ensure_replay_group(job.topic.stream_name, job.consumer.group_name)
            now = timezone.now()
            Replay.objects.filter(pk=job.pk, state=State.PLANNED).update(state=State.RUNNING, started_at=now)
            job.state, job.started_at = State.RUNNING, now

    def _finish(self, running: _Running) -> None:
        job = running.job
        get_redis().hset(keys.replay_progress(job.topic.stream_name, job.pk), "state", "done")
        replays.trim_replay_stream(job.topic.stream_name, job.consumer.group_name)
        replays.sync(job)
        Replay.objects.filter(pk=job.pk, state__in=[State.PLANNED, State.RUNNING]).update(
            state=State.DONE, ended_at=timezone.now()
        )
        replays.audit.info("replay %s done", job.pk)
        self._let_go(running)

    def _close(self, running: _Running, live: dict | None) -> None:
        """The job was closed in Redis (cancelled), or Redis lost its progress: end the row too."""
        job = running.job
        if live is None:
            note = (job.note + " " if job.note else "") + "Its progress was lost with Redis's data; start it again."
            Replay.objects.filter(pk=job.pk, state__in=[State.PLANNED, State.RUNNING]).update(
                state=State.FAILED, ended_at=timezone.now(), note=note
            )
        else:
            replays.trim_replay_stream(job.topic.stream_name, job.consumer.group_name)
            replays.sync(job)
        self._let_go(running)


def _ensure_replay_group(topic: str, consumer: str) -> None:
    try:
        get_redis().xgroup_create(keys.replay_stream(topic, consumer), keys.group(consumer), id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _flip_to_replaying(rows: list[FailedEvent], by: Any) -> list[FailedEvent]:
    """Mark rows replaying, as ``failures.replay_many`` does; return those this call flipped."""
    marker = timezone.now()
    pks = [row.pk for row in rows]
    with transaction.atomic():
        FailedEvent.objects.replayable().filter(pk__in=pks).update(
            status=FailedEvent.Status.REPLAYING, replayed_by=by, replayed_at=marker, replay_count=F("replay_count") + 1
        )
    flipped = set(
        FailedEvent.objects.filter(pk__in=pks, status=FailedEvent.Status.REPLAYING, replayed_at=marker).values_list(
            "pk", flat=True
        )
    )
    return [row for row in rows if row.pk in flipped]
