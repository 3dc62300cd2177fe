"""Declared versus observed: where the running system and the configuration disagree.

The monitor adds ``snapshot["drift"]``, a list of findings, each with a kind, the
thing it is about, a one-line explanation and the figure behind it:

- ``silent_producer``: a producer with an expected interval that has not
  published within it (seen from its counters and its last HTTP publish);
- ``undeclared_group``: a consumer group on a topic's stream that no consumer
  declares (a deleted consumer whose group still holds a backlog);
- ``undeclared_stream``: a topic stream in Redis with no declared topic;
- ``no_worker``: a declared, unpaused consumer with no live worker.

Redis is asked for the groups every ``EVERY`` seconds; the keyspace is walked
for streams a few ``SCAN`` calls per sample (``SCAN_SECONDS``), so a big
keyspace makes that finding slower to appear, never the monitor slower. The
rest comes from the snapshot. (On Redis Cluster the stream walk is skipped.)

Redis knows topics and consumers by their identities (``Topic.stream_name``,
``Consumer.group_name``), which renames leave alone: streams and groups are
compared with those (``Declared``), and a finding names the topic as operators see it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from . import keys
from .snapshot import Snapshot

KINDS = ("silent_producer", "undeclared_group", "undeclared_stream", "no_worker")
EVERY = 30.0  # seconds between looks at Redis's groups and streams
SCAN_SECONDS = 0.005  # of each sample spent walking the keyspace for streams


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    name: str
    explanation: str
    figure: str


@dataclass(frozen=True, slots=True)
class Declared:
    """What the configuration declares, by Redis identity."""

    topics: dict[str, str]  # stream identity -> the topic's (current) name
    groups: dict[str, frozenset[str]]  # stream identity -> the group identities of its consumers


# producer -> (the interval it should publish within, in seconds; its last HTTP publish, or None)
Expectations = dict[str, tuple[float, float | None]]


def producer_expectations() -> Expectations:
    from .models import Producer

    rows = Producer.objects.filter(expected_interval__isnull=False, revoked_at__isnull=True)
    return {
        name: (interval, seen.timestamp() if seen else None)
        for name, interval, seen in rows.values_list("name", "expected_interval", "last_seen_at")
    }


class Watcher:
    """Keeps what drift needs between samples: when producers last published, the last Redis look."""

    def __init__(self, scan_seconds: float = SCAN_SECONDS) -> None:
        self.started = time.time()
        self.streams = StreamWalk(scan_seconds)
        self._published: dict[str, tuple[int, float]] = {}  # producer -> (total, when it last grew)
        self._redis_findings: list[Finding] = []
        self._looked_at = 0.0

    def check(
        self, client: redis.Redis, snapshot: Snapshot, declared: Declared, expected: Expectations | None = None
    ) -> list[dict]:
        """Findings for this snapshot, as dicts; ``expected`` defaults to the producers' in the database."""
        expected = producer_expectations() if expected is None else expected
        now = snapshot["at"]
        if self.streams.advance(client) or now - self._looked_at >= EVERY:
            self._redis_findings = self.redis_findings(client, declared)
            self._looked_at = now
        found = self.silent_producers(snapshot, expected, now) + no_workers(snapshot) + self._redis_findings
        return [asdict(f) for f in found]

    def silent_producers(self, snapshot: Snapshot, expected: Expectations, now: float) -> list[Finding]:
        totals = producer_totals(snapshot.get("counters") or {})
        found = []
        for producer, (interval, seen_at) in sorted(expected.items()):
            total = totals.get(producer, 0)
            before, grew_at = self._published.get(producer, (total, self.started))
            if total > before:
                grew_at = now
            self._published[producer] = (total, grew_at)
            last = max(grew_at, seen_at or 0.0)
            if now - last > interval:
                silent, every = _ago(now - last), _ago(interval)
                explanation = f"producer {producer} has not published for {silent} (expected every {every})"
                found.append(Finding("silent_producer", producer, explanation, f"{now - last:.0f} s"))
        return found

    def redis_findings(self, client: redis.Redis, declared: Declared) -> list[Finding]:
        """Groups no consumer declares, and streams (from the last full walk) no topic declares."""
        strays = sorted(self.streams.topics - set(declared.topics))
        return undeclared_groups(client, declared) + undeclared_streams(client, strays)


def producer_totals(counters: dict[str, dict[str, int]]) -> dict[str, int]:
    """Events each producer published, over all topics (from the ``published:<producer>`` counters)."""
    totals: dict[str, int] = {}
    for fields in counters.values():
        for field, value in fields.items():
            if field.startswith("published:"):
                name = field.removeprefix("published:")
                totals[name] = totals.get(name, 0) + value
    return totals


def no_workers(snapshot: Snapshot) -> list[Finding]:
    found = []
    for consumer in snapshot.get("consumers") or []:
        if not consumer.get("paused") and consumer.get("workers", 0) == 0:
            backlog = consumer.get("backlog", 0)
            explanation = f"consumer {consumer['name']} has no live worker (backlog {backlog:,})"
            found.append(Finding("no_worker", consumer["name"], explanation, f"{backlog:,}"))
    return found


class StreamWalk:
    """Walks the keyspace for topic streams, a few SCAN calls at a time; ``topics``: those the last full pass saw."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.topics: set[str] = set()
        self._cursor = 0
        self._seen: set[str] = set()

    def advance(self, client: redis.Redis) -> bool:
        """Walk on for up to ``seconds``; return True when a pass has just completed."""
        if not isinstance(client, redis.Redis):
            return False  # a cluster client scans node by node; not walked here
        pattern = keys.stream("*")
        prefix, _, suffix = pattern.partition("*")
        deadline = time.monotonic() + self.seconds
        while True:
            self._cursor, found = client.scan(self._cursor, match=pattern, count=1000, _type="stream")
            self._seen.update(_text(k).removeprefix(prefix).removesuffix(suffix) for k in found)
            if self._cursor == 0:
                self.topics, self._seen = self._seen, set()
                return True
            if time.monotonic() >= deadline:
                return False


def undeclared_groups(client: redis.Redis, declared: Declared) -> list[Finding]:
    streams = sorted(declared.topics)
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(keys.stream(stream))
    found = []
    for stream, reply in zip(streams, pipe.execute(raise_on_error=False)):
        topic, groups = declared.topics[stream], declared.groups.get(stream, frozenset())
        for group in reply if isinstance(reply, list) else []:
            name = _text(group["name"])
            if name not in groups:
                lag = group.get("lag")
                backlog = f"lag {lag:,}, pending {group.get('pending', 0):,}" if lag is not None else "lag unknown"
                explanation = f"group {name} on topic {topic} belongs to no declared consumer ({backlog})"
                found.append(Finding("undeclared_group", f"{topic}/{name}", explanation, backlog))
    return found


def undeclared_streams(client: redis.Redis, strays: list[str]) -> list[Finding]:
    lengths = _lengths(client, strays)
    explain = "stream for topic {} exists but no topic declares it ({:,} events)"
    return [Finding("undeclared_stream", name, explain.format(name, n), f"{n:,}") for name, n in zip(strays, lengths)]


def _lengths(client: redis.Redis, topics: list[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for topic in topics:
        pipe.xlen(keys.stream(topic))
    return [n if isinstance(n, int) else 0 for n in pipe.execute(raise_on_error=False)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ago(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
