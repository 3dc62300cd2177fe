"""A topic's history in Redis: one reading per second for the last minutes, one per
minute for the last day, capped, so charts and health survive a monitor restart.

Each entry holds running totals and gauges: ``p`` (published), and per
consumer ``a:`` (acked), ``e:`` (errors), ``b:`` (backlog) and ``o:`` (oldest
pending, ms). ``rates()`` turns totals into per-second rates, ``levels()``
reads gauges, ``seed_tracker()`` replays the readings into a health tracker.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import redis

from . import conf, health, keys, stream_ids
from .connection import get_redis

if TYPE_CHECKING:
    from .monitor import Flow, Reading


def _history_fields(reading: Reading, topic: str, flow: Flow) -> dict[str, int]:
    fields = {"p": reading.counters[topic].get("published", 0)}
    for (t, consumer), lane in reading.lanes.items():
        if t == topic:
            fields[f"a:{consumer}"] = lane.acked
            fields[f"e:{consumer}"] = lane.errors
            fields[f"b:{consumer}"] = lane.lag + lane.pending + lane.retrying
            fields[f"o:{consumer}"] = int(lane.oldest_pending * 1000)
    return fields


def write_history(client: redis.Redis, reading: Reading, flow: Flow, *, minute: bool) -> None:
    """Append the reading to each topic's per-second history (and per-minute one, if asked).

    The entry id is the reading's second (minute), so a second monitor writing
    the same second gets an error reply, ignored, instead of a duplicate.
    """
    second = int(reading.at)
    pipe = client.pipeline(transaction=False)
    for topic in flow.topics:
        fields = _history_fields(reading, topic, flow)
        pipe.xadd(
            keys.rate_history(topic, "s"),
            fields,
            id=f"{second * 1000}-0",
            maxlen=conf.get("MONITOR_HISTORY_SECONDS"),
            approximate=False,
        )
        if minute:
            minute_id = f"{second // 60 * 60000}-0"
            pipe.xadd(
                keys.rate_history(topic, "m"),
                fields,
                id=minute_id,
                maxlen=conf.get("MONITOR_HISTORY_MINUTES"),
                approximate=False,
            )
    pipe.execute(raise_on_error=False)


def history(topic: str, resolution: str = "s", since: float | None = None) -> list[tuple[float, dict[str, int]]]:
    """Readings of a topic from ``since`` (a Unix time) on, oldest first."""
    start = "-" if since is None else str(int(since * 1000))
    return _decode_history(get_redis().xrange(keys.rate_history(topic, resolution), min=start, max="+"))


def _decode_history(entries: Any) -> list[tuple[float, dict[str, int]]]:
    if not isinstance(entries, list):
        return []  # an error reply: no history
    return [(stream_ids.id_ms(sid) / 1000, {k.decode(): int(v) for k, v in f.items()}) for sid, f in entries]


def rates(readings: list[tuple[float, dict[str, int]]], field_name: str) -> list[tuple[float, float]]:
    """Per-second rates of a running total between successive readings."""
    points = []
    for (t0, a), (t1, b) in zip(readings, readings[1:]):
        if t1 > t0 and field_name in b:
            points.append((t1, max(0, b[field_name] - a.get(field_name, 0)) / (t1 - t0)))
    return points


def levels(readings: list[tuple[float, dict[str, int]]], field_name: str) -> list[tuple[float, float]]:
    """A gauge field (backlog, pending age) over time."""
    return [(t, float(f[field_name])) for t, f in readings if field_name in f]


def seed_tracker(client: redis.Redis, flow: Flow, tracker: health.Tracker, sparks: dict[str, deque]) -> None:
    """Replay the stored per-second history into a fresh tracker (and the sparklines).

    A restarted monitor then keeps its LAGGING/FAILING window and its STALLED
    clock instead of starting them over. It reads as far back as the longest
    of the window and the consumers' stall thresholds, within what is kept.
    """
    span = max([tracker.seconds] + [c.limits.stall for c in flow.consumers.values()])
    since = str(int((time.time() - min(span, conf.get("MONITOR_HISTORY_SECONDS"))) * 1000))
    topics = sorted({t for c in flow.consumers.values() for t in c.topics if t in flow.topics})
    pipe = client.pipeline(transaction=False)
    for topic in topics:
        pipe.xrange(keys.rate_history(topic, "s"), min=since, max="+")
    replies = pipe.execute(raise_on_error=False)
    stored = {topic: _decode_history(reply) for topic, reply in zip(topics, replies)}
    for config in flow.consumers.values():
        rows = _consumer_history(config.name, [t for t in config.topics if t in stored], stored)
        for at, backlog, acked, errors, oldest in rows:
            tracker.observe(config.name, at, backlog, acked, errors, oldest)
        spark = sparks.setdefault(config.name, deque(maxlen=conf.get("MONITOR_SPARK_POINTS")))
        spark.extend(round(max(0, b[2] - a[2]) / (b[0] - a[0]), 1) for a, b in zip(rows, rows[1:]))


def _consumer_history(name: str, topics: list[str], stored: dict) -> list[tuple[float, int, int, int, float]]:
    """(at, backlog, acked, errors, oldest pending) per stored second, summed over the consumer's topics.

    Seconds that lack one of its topics are left out: a partial sum would look
    like acks going backwards.
    """
    by_second: dict[float, list[dict[str, int]]] = {}
    for topic in topics:
        for at, fields in stored[topic]:
            if f"a:{name}" in fields:
                by_second.setdefault(at, []).append(fields)
    rows = []
    for at, parts in sorted(by_second.items()):
        if len(parts) == len(topics):
            total = {f: sum(p.get(f"{f}:{name}", 0) for p in parts) for f in "bae"}
            oldest = max(p.get(f"o:{name}", 0) for p in parts) / 1000
            rows.append((at, total["b"], total["a"], total["e"], oldest))
    return rows
