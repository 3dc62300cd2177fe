"""Sampling the flow: rates, backlogs, pending ages, workers and health, from Redis.

One ``Monitor.step()`` reads every topic's counters and consumer groups, every
lane's oldest pending event and retry schedule, and the live worker
heartbeats, in a few pipelined round trips; it turns the readings into rates
and health (``eventflow.health``) and returns a *snapshot*
(``eventflow.snapshot.Snapshot``, typed records that are plain JSON), which it
also stores in Redis for web processes to render.

Readings are also appended to per-topic history streams (``eventflow.history``:
one entry per second for the last minutes, one per minute for the last day), so
charts and the health window survive a monitor restart. Only one monitor samples at a time (a leader key); others wait.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from django.db import DatabaseError
from django.db.models import Count

from . import conf, drift, health, history, keys
from .connection import get_redis
from .database import close_connection, drop_broken_connections
from .snapshot import ConsumerState, DatabaseState, LaneState, Snapshot, TopicState, Totals, WorkerState
from .status import broker_status

logger = logging.getLogger(__name__)

def setting(name: str) -> Any:
    """``settings.EVENTFLOW_MONITOR_<name>``, or its default in ``conf``."""
    return conf.get(f"MONITOR_{name}")


# --- the flow as configured ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    name: str
    topics: tuple[str, ...]
    paused: bool
    limits: health.Thresholds


@dataclass(slots=True)
class Flow:
    """Topics, producers and consumers as the database says, by (current) name.

    Redis knows topics and consumers by identities that renames leave alone:
    ``stream_of`` and ``group_of`` translate, so only the keys use them and the
    snapshot shows the names operators see.
    """

    topics: dict[str, bool] = field(default_factory=dict)  # name -> active
    producers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consumers: dict[str, ConsumerConfig] = field(default_factory=dict)
    streams: dict[str, str] = field(default_factory=dict)  # topic name -> Topic.stream_name
    groups: dict[str, str] = field(default_factory=dict)  # consumer name -> Consumer.group_name

    def lanes(self) -> list[tuple[str, str]]:
        return [(t, c.name) for c in self.consumers.values() for t in c.topics if t in self.topics]

    def stream_of(self, topic: str) -> str:
        return self.streams.get(topic, topic)

    def group_of(self, consumer: str) -> str:
        return self.groups.get(consumer, consumer)

    def declared(self) -> drift.Declared:
        """The topics' streams and their consumers' groups, by Redis identity (what drift compares)."""
        streams = {topic: self.stream_of(topic) for topic in self.topics}
        groups: dict[str, set[str]] = {stream: set() for stream in streams.values()}
        for topic, consumer in self.lanes():
            groups[streams[topic]].add(keys.group(self.group_of(consumer)))
        names = {stream: topic for topic, stream in streams.items()}
        return drift.Declared(names, {stream: frozenset(found) for stream, found in groups.items()})


def load_flow() -> Flow:
    from .models import Consumer, Producer, Topic

    flow = Flow(topics=dict(Topic.objects.values_list("name", "active")))
    flow.streams = dict(Topic.objects.values_list("name", "stream_name"))
    flow.groups = dict(Consumer.objects.values_list("name", "group_name"))
    for producer in Producer.objects.filter(revoked_at__isnull=True).prefetch_related("topics"):
        flow.producers[producer.name] = tuple(sorted(t.name for t in producer.topics.all()))
    for consumer in Consumer.objects.prefetch_related("topics"):
        limits = health.Thresholds(
            consumer.stall_threshold,
            consumer.failure_threshold,
            consumer.ack_timeout,
            warn_failure=consumer.failure_warning,
            warn_dead=consumer.dead_letter_warning,
        )
        topics = tuple(sorted(t.name for t in consumer.topics.all()))
        flow.consumers[consumer.name] = ConsumerConfig(consumer.name, topics, consumer.paused, limits)
    return flow


# --- one reading of Redis ----------------------------------------------------------


@dataclass(slots=True)
class Lane:
    """One consumer on one topic, as Redis has it now."""

    lag: int = 0
    pending: int = 0
    retrying: int = 0
    oldest_pending: float = 0.0
    acked: int = 0
    errors: int = 0
    dead: int = 0
    skipped: int = 0  # events its event-type filter passed over (counted in ``acked`` too)
    trimmed: int = 0  # events retention cut before this consumer acknowledged them
    infra: int = 0  # database and Redis failures its workers met (not the handler's)
    parked: int = 0  # dead letters in the outbox, not yet written to the database (it may be down)


@dataclass(slots=True)
class Reading:
    at: float
    counters: dict[str, dict[str, int]]  # topic -> counter hash
    lengths: dict[str, int]
    lanes: dict[tuple[str, str], Lane]
    workers: list[dict]


def read(client: redis.Redis, flow: Flow) -> Reading:
    """Read everything the monitor needs in three pipelined passes."""
    topics = list(flow.topics)
    lanes = flow.lanes()
    first: list[tuple[str, Any]] = []
    for topic in topics:
        stream = flow.stream_of(topic)
        first += [("hgetall", (keys.counters(stream),)), ("xinfo_groups", (keys.stream(stream),))]
        first.append(("xlen", (keys.stream(stream),)))
    first += [("zcard", (keys.retry_schedule(flow.stream_of(t), flow.group_of(c)),)) for t, c in lanes]
    first += [("hlen", (keys.dead_letters(flow.stream_of(t), flow.group_of(c)),)) for t, c in lanes]
    first.append(("zrangebyscore", (keys.workers(), time.time() - conf.get("HEARTBEAT_TTL"), "+inf", 0, 1000)))
    replies = pipelined(client, first)
    reading = Reading(at=time.time(), counters={}, lengths={}, lanes={}, workers=[])
    groups = {}
    for i, topic in enumerate(topics):
        reading.counters[topic] = _decode_counters(replies[3 * i])
        groups[topic] = groups_by_name(replies[3 * i + 1])
        reading.lengths[topic] = replies[3 * i + 2] if isinstance(replies[3 * i + 2], int) else 0
    offset = 3 * len(topics)
    for j, (topic, consumer) in enumerate(lanes):
        group = flow.group_of(consumer)
        reading.lanes[(topic, consumer)] = _lane(reading.counters[topic], groups[topic].get(group), group)
        reading.lanes[(topic, consumer)].retrying = _int(replies[offset + j])
        reading.lanes[(topic, consumer)].parked = _int(replies[offset + len(lanes) + j])
    _read_pending_ages(client, reading, flow)
    reading.workers = _read_workers(client, replies[-1])
    return reading


def pipelined(client: redis.Redis, commands: list[tuple[str, tuple]]) -> list[Any]:
    """Run commands in chunked pipelines; an error reply comes back as the exception."""
    replies: list[Any] = []
    chunk = setting("PIPELINE_CHUNK")
    for start in range(0, len(commands), chunk):
        pipe = client.pipeline(transaction=False)
        for name, args in commands[start : start + chunk]:
            getattr(pipe, name)(*args)
        replies += pipe.execute(raise_on_error=False)
    return replies


def _decode_counters(reply: Any) -> dict[str, int]:
    if not isinstance(reply, dict):
        return {}
    return {k.decode(): int(v) for k, v in reply.items()}


def groups_by_name(reply: Any) -> dict[str, dict]:
    if not isinstance(reply, list):
        return {}  # no stream yet
    return {g["name"].decode() if isinstance(g["name"], bytes) else g["name"]: g for g in reply}


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _lane(counters: dict[str, int], group: dict | None, consumer: str) -> Lane:
    lane = Lane(
        acked=counters.get(f"acked:{consumer}", 0) + counters.get(f"skipped:{consumer}", 0),
        errors=counters.get(f"errors:{consumer}", 0),
        dead=counters.get(f"dead:{consumer}", 0),
        skipped=counters.get(f"skipped:{consumer}", 0),
        trimmed=counters.get(f"trimmed:{consumer}", 0),
        infra=counters.get(f"infra:{consumer}", 0),
    )
    if group is not None:
        lane.pending = int(group.get("pending") or 0)
        lane.lag = int(group.get("lag") or 0)  # None when Redis cannot tell (entries deleted)
    return lane


def _read_pending_ages(client: redis.Redis, reading: Reading, flow: Flow) -> None:
    waiting = [lane for lane in reading.lanes.items() if lane[1].pending > 0]
    commands = [
        ("xpending_range", (keys.stream(flow.stream_of(t)), keys.group(flow.group_of(c)), "-", "+", 1))
        for (t, c), _ in waiting
    ]
    for ((_, _), lane), reply in zip(waiting, pipelined(client, commands)):
        if isinstance(reply, list) and reply:
            lane.oldest_pending = reply[0]["time_since_delivered"] / 1000


def _read_workers(client: redis.Redis, ids: Any) -> list[dict]:
    if not isinstance(ids, list) or not ids:
        return []
    documents = client.mget([keys.worker(i.decode()) for i in ids])
    return [orjson.loads(d) for d in documents if d]


# --- the monitor ----------------------------------------------------------------------


class Monitor:
    """Turns successive readings into rates and health; keeps just enough memory."""

    def __init__(self, flow_refresh: float = 2.0) -> None:
        # host:pid first, so an operator (and the multi-host test) can tell which process samples.
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.tracker = health.Tracker(setting("HEALTH_WINDOW"))
        self.flow_refresh = flow_refresh
        self._flow: Flow | None = None
        self._flow_at = 0.0
        self._previous: Reading | None = None
        self._sparks: dict[str, deque[float]] = {}
        self._minute = -1
        self._broker: dict = {}
        self._broker_at = 0.0
        self._seeded = False
        self.database: DatabaseState = {"status": "ok", "error": ""}  # what the last database read found
        self._failed: dict[str, int] = {}
        self._expected: drift.Expectations = {}
        self._totals: deque[tuple[float, int, int]] = deque()  # (at, published, handled) for smoothing
        self.drift = drift.Watcher()

    def flow(self) -> Flow:
        """The configured flow, reloaded every ``flow_refresh`` seconds; the last one while the database is down."""
        if self._flow is None or time.monotonic() - self._flow_at > self.flow_refresh:
            self._flow_at = time.monotonic()
            loaded = self._from_database(load_flow)
            self._flow = loaded if loaded is not None else (self._flow or Flow())
        return self._flow

    def producer_expectations(self) -> drift.Expectations:
        """The producers' expected intervals; the last ones read while the database is down."""
        expected = self._from_database(drift.producer_expectations)
        if expected is not None:
            self._expected = expected
        return self._expected

    def failed(self) -> dict[str, int]:
        """Replayable failed events per consumer; the last counts while the database is down."""
        counts = self._from_database(failed_counts)
        if counts is not None:
            self._failed = counts
        return self._failed

    def _from_database(self, read: Any) -> Any:
        """``read()``, or None (the database noted down) if the database fails; Redis sampling goes on."""
        drop_broken_connections()
        try:
            value = read()
        except DatabaseError as exc:
            close_connection()  # reopened on next use, once the database is back
            if self.database["status"] == "ok":
                logger.warning("monitor: database unavailable (%s); sampling Redis meanwhile", exc)
            self.database = {"status": "down", "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
            return None
        self.database = {"status": "ok", "error": ""}
        return value

    def broker(self, client: redis.Redis) -> dict:
        """The server's kind and durability mode, read every ``BROKER_EVERY`` seconds (it rarely changes)."""
        if time.monotonic() - self._broker_at > setting("BROKER_EVERY") or not self._broker:
            self._broker, self._broker_at = broker_status(client), time.monotonic()
        return self._broker

    def is_leader(self, client: redis.Redis) -> bool:
        """Hold the leader key (or take it if free); only the leader samples."""
        ttl = max(1, int(setting("LEADER_TTL")))
        if client.set(keys.monitor_leader(), self.id, nx=True, ex=ttl):
            return True
        if client.get(keys.monitor_leader()) == self.id.encode():
            client.expire(keys.monitor_leader(), ttl)
            return True
        return False

    def step(self, *, store: bool = True) -> Snapshot:
        """Sample once, compute rates and health, store history and the snapshot."""
        client = get_redis()
        flow = self.flow()
        if not self._seeded:
            history.seed_tracker(client, flow, self.tracker, self._sparks)
            restore_clocks(client, self.tracker)
            self._seeded = True
        reading = read(client, flow)
        snapshot = build_snapshot(flow, reading, self._previous, self.tracker, self._sparks, failed=self.failed())
        snapshot["broker"] = self.broker(client)
        snapshot["database"] = self.database.copy()
        smooth_totals(snapshot["totals"], reading, self._totals)
        # Declared versus observed (eventflow.drift), with the last expectations while the database is down.
        snapshot["drift"] = self.drift.check(client, snapshot, flow.declared(), self.producer_expectations())
        self._previous = reading
        self.tracker.forget_others(set(flow.consumers))
        if store:
            minute = int(reading.at) // 60
            history.write_history(client, reading, flow, minute=minute != self._minute)
            self._minute = minute
            store_snapshot(client, snapshot)
            store_clocks(client, self.tracker, reading.at)
        return snapshot


def store_clocks(client: redis.Redis, tracker: health.Tracker, at: float) -> None:
    """Keep each consumer's health clocks in Redis, so a restarted monitor does not restart "stalled for"."""
    clocks = tracker.clocks()
    if clocks:
        client.hset(keys.monitor_clocks(), mapping={n: orjson.dumps({**c, "at": at}) for n, c in clocks.items()})


def restore_clocks(client: redis.Redis, tracker: health.Tracker) -> None:
    """Give a freshly seeded tracker the clocks the previous monitor kept (see ``Tracker.restore``)."""
    stored = client.hgetall(keys.monitor_clocks())
    oldest = time.time() - setting("HISTORY_SECONDS")  # older clocks: the monitor was away too long to trust them
    for name, raw in stored.items():
        clock = orjson.loads(raw)
        if clock.get("at", 0.0) < oldest:
            continue
        tracker.restore(name.decode(), clock.get("backlog_since"), clock.get("last_ack_at"), clock.get("at", 0.0))


def smooth_totals(totals: Totals, reading: Reading, memory: deque) -> None:
    """Add headline rates averaged over the last ``SMOOTH_SECONDS`` (sample to sample they jump).

    ``published_rate_smoothed`` and ``acked_rate_smoothed`` (handled, not
    type-filtered), and ``smoothed_over``: the seconds they really cover.
    """
    published = sum(c.get("published", 0) for c in reading.counters.values())
    handled = sum(lane.acked - lane.skipped for lane in reading.lanes.values())
    memory.append((reading.at, published, handled))
    while len(memory) > 2 and memory[1][0] <= reading.at - setting("SMOOTH_SECONDS"):
        memory.popleft()
    at, published_then, handled_then = memory[0]
    elapsed = reading.at - at
    totals["smoothed_over"] = round(elapsed, 1)
    totals["published_rate_smoothed"] = _rate(published, published_then, elapsed)
    totals["acked_rate_smoothed"] = _rate(handled, handled_then, elapsed)


def store_snapshot(client: redis.Redis, snapshot: Snapshot) -> None:
    client.set(keys.monitor_snapshot(), orjson.dumps(snapshot), ex=setting("SNAPSHOT_TTL"))
    client.set(keys.monitor_sampled_at(), snapshot["at"])


def load_snapshot() -> Snapshot:
    """The running monitor's latest snapshot, or a one-off sample if none is current."""
    raw = get_redis().get(keys.monitor_snapshot())
    if raw:
        return orjson.loads(raw)
    return Monitor().step(store=False)


# --- from a reading to a snapshot --------------------------------------------------


def build_snapshot(
    flow: Flow,
    reading: Reading,
    previous: Reading | None,
    tracker: health.Tracker,
    sparks: dict[str, deque],
    failed: dict[str, int] | None = None,
) -> Snapshot:
    elapsed = reading.at - previous.at if previous is not None else 0.0
    produce, consume = _edge_rates(flow, reading, previous, elapsed)
    failed = failed_counts() if failed is None else failed
    consumers = [
        _consumer_state(config, reading, consume, tracker, sparks, failed.get(config.name, 0))
        for config in flow.consumers.values()
    ]
    topics = [_topic_state(flow, name, active, reading, produce) for name, active in flow.topics.items()]
    return {
        "at": reading.at,
        "live": previous is not None,
        "totals": {
            "published_rate": round(sum(t["rate"] for t in topics), 1),
            "acked_rate": round(sum(c["rate"] for c in consumers), 1),
            "backlog": sum(c["backlog"] for c in consumers),
            "failed": sum(failed.values()),
            "topics": len(topics),
            "producers": len(flow.producers),
            "consumers": len(consumers),
            "workers": len(reading.workers),
            "unhealthy": sum(1 for c in consumers if c["status"] != health.Status.OK),
            "trimmed": sum(c["trimmed"] for c in consumers),
        },
        "topics": topics,
        "producers": [{"name": n, "topics": list(t)} for n, t in flow.producers.items()],
        "consumers": consumers,
        "edges": {"produce": produce, "consume": consume},
        "workers": [_worker_state(w, reading.at) for w in reading.workers],
        # Per lane and raw, for /metrics (eventflow.metrics): Redis's own counters stay monotonic across restarts.
        "lanes": [_lane_state(topic, consumer, lane) for (topic, consumer), lane in reading.lanes.items()],
        "counters": reading.counters,
    }


def _rate(now: int, before: int, elapsed: float) -> float:
    return round(max(0, now - before) / elapsed, 1) if elapsed > 0 else 0.0


def _edge_rates(flow: Flow, reading: Reading, previous: Reading | None, elapsed: float) -> tuple[dict, dict]:
    produce: dict[str, float] = {}
    for producer, topics in flow.producers.items():
        for topic in topics:
            if topic in reading.counters:
                field_name = f"published:{producer}"
                before = previous.counters.get(topic, {}).get(field_name, 0) if previous else 0
                produce[f"{producer}|{topic}"] = _rate(reading.counters[topic].get(field_name, 0), before, elapsed)
    consume: dict[str, float] = {}
    for (topic, consumer), lane in reading.lanes.items():
        before = previous.lanes.get((topic, consumer)) if previous else None
        # Handled only: events the type filter skipped are counted apart ("skipped").
        handled_before = before.acked - before.skipped if before else 0
        consume[f"{topic}|{consumer}"] = _rate(lane.acked - lane.skipped, handled_before, elapsed)
    return produce, consume


def _topic_state(flow: Flow, name: str, active: bool, reading: Reading, produce: dict) -> TopicState:
    return {
        "name": name,
        "active": active,
        "rate": round(sum(r for edge, r in produce.items() if edge.endswith(f"|{name}")), 1),
        "published": reading.counters[name].get("published", 0),
        "length": reading.lengths.get(name, 0),
        "producers": [p for p, topics in flow.producers.items() if name in topics],
        "consumers": [c.name for c in flow.consumers.values() if name in c.topics],
    }


def _consumer_state(
    config: ConsumerConfig, reading: Reading, consume: dict, tracker: health.Tracker, sparks: dict, failed: int
) -> ConsumerState:
    lanes = [reading.lanes[(t, config.name)] for t in config.topics if (t, config.name) in reading.lanes]
    lag, pending = sum(x.lag for x in lanes), sum(x.pending for x in lanes)
    retrying = sum(x.retrying for x in lanes)
    oldest = max((x.oldest_pending for x in lanes), default=0.0)
    backlog = lag + pending + retrying
    workers = [w for w in reading.workers if config.name in (w.get("consumers") or {})]
    acked, errors = sum(x.acked for x in lanes), sum(x.errors for x in lanes)
    dead = sum(x.dead for x in lanes)
    window = tracker.observe(config.name, reading.at, backlog, acked, errors, oldest, dead)
    handler_error = next((e for w in workers if (e := w["consumers"][config.name].get("handler_error"))), "")
    facts = health.Facts(backlog, oldest, len(workers), config.paused, handler_error)
    verdict = health.assess(facts, window, config.limits, tracker.previous(config.name))
    tracker.remember(config.name, verdict.status)
    rate = round(sum(consume.get(f"{t}|{config.name}", 0.0) for t in config.topics), 1)
    spark = sparks.setdefault(config.name, deque(maxlen=setting("SPARK_POINTS")))
    spark.append(rate)
    return {
        "name": config.name,
        "topics": list(config.topics),
        "paused": config.paused,
        "status": str(verdict.status),
        "reason": verdict.reason,
        "value": verdict.value,
        "lag": lag,
        "pending": pending,
        "retrying": retrying,
        "backlog": backlog,
        "oldest_pending": round(oldest, 1),
        "rate": rate,
        "errors_in_window": window.errors,
        "acked": acked,
        "dead": dead,
        "dead_in_window": window.dead,
        "skipped": sum(x.skipped for x in lanes),
        "trimmed": sum(x.trimmed for x in lanes),
        "infra_errors": sum(x.infra for x in lanes),
        "parked_dead_letters": sum(x.parked for x in lanes),
        "handler_error": handler_error,
        "failed": failed,
        "workers": len(workers),
        "in_flight": sum(int(w["consumers"][config.name].get("in_flight", 0)) for w in workers),
        "spark": list(spark),
        "stall_threshold": config.limits.stall,
    }


def _lane_state(topic: str, consumer: str, lane: Lane) -> LaneState:
    return {
        "topic": topic,
        "consumer": consumer,
        "lag": lane.lag,
        "pending": lane.pending,
        "retrying": lane.retrying,
        "oldest_pending": round(lane.oldest_pending, 3),
    }


def _worker_state(document: dict, now: float) -> WorkerState:
    return {
        "id": document.get("id", ""),
        "host": document.get("host", ""),
        "pid": document.get("pid"),
        "started_at": document.get("started_at"),
        "beat_age": round(max(0.0, now - float(document.get("beat_at") or now)), 1),
        "consumers": document.get("consumers") or {},
    }


def failed_counts() -> dict[str, int]:
    """Replayable failed events per consumer name (one grouped, indexed query)."""
    from .models import FailedEvent

    rows = (
        FailedEvent.objects.replayable()
        .values_list("consumer__name")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)
