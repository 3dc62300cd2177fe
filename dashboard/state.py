"""Template contexts for the live regions, built from a monitor snapshot.

The page views, the WebSocket snapshot and the monitor's pushes all build
their context here, so a partial looks the same however it is delivered.
"""

from __future__ import annotations

import time

from django.db.models import Count

from eventflow import causality, history, inspection, replays
from eventflow.connection import get_redis
from eventflow.health import rank
from eventflow.models import Consumer, FailedEvent
from eventflow.snapshot import Snapshot, consumer_named, topic_named

from . import charts, graph, params

TABLE_ROWS = 25  # consumers listed on the overview, the worst first (the rest: /consumers/)
TOPIC_ROWS = 10  # busiest topics listed on the overview
RATE_SPAN = 300.0  # seconds in the per-second charts
HOUR, DAY = 3600.0, 86400.0
# The range choice of the charts: per-second readings for 5 minutes, per-minute ones beyond.
RANGES = (("5m", "last 5 minutes", "s", RATE_SPAN), ("1h", "last hour", "m", HOUR), ("24h", "last 24 hours", "m", DAY))
CAUSAL_TREE_EVENTS = 30  # events drawn in an event page's causal tree (it is rebuilt every second)


def overview(snapshot: Snapshot, focus: str = "") -> dict:
    """The overview's live regions; ``focus`` ("topic:orders") draws one node's neighbourhood."""
    consumers = sorted(snapshot["consumers"], key=lambda c: (rank(c["status"]), c["name"]))
    # Rows of their own: the snapshot's records stay as the monitor made them (other pages read them too).
    rows = [
        {
            **consumer,
            "sparkline": charts.sparkline(consumer.get("spark") or []),
            "severity": rank(consumer["status"]),
        }
        for consumer in consumers[:TABLE_ROWS]
    ]
    return {
        "snap": snapshot,
        "totals": snapshot["totals"],
        "graph": graph.topology(snapshot, focus),
        "busiest_topics": sorted(snapshot["topics"], key=lambda t: (-t.get("rate", 0), t["name"]))[:TOPIC_ROWS],
        "consumers": rows,
        "more_consumers": max(0, len(consumers) - TABLE_ROWS),
        "stale": not snapshot.get("live"),
        "drift": snapshot.get("drift") or [],
    }


def topic(snapshot: Snapshot, name: str) -> dict | None:
    info = topic_named(snapshot, name)
    if info is None:
        return None
    now = time.time()
    seconds = history.history(name, "s", since=now - RATE_SPAN)
    minutes = history.history(name, "m", since=now - DAY)
    hour = [(t, r) for t, r in history.rates(minutes, "p") if t >= now - HOUR]
    lanes = [
        {**c, "lane_rate": snapshot["edges"]["consume"].get(f"{name}|{c['name']}", 0.0)}
        for c in snapshot["consumers"]
        if c["name"] in info["consumers"]
    ]
    return {
        "topic": info,
        "lanes": lanes,
        "rate_charts": [
            ("5m", "last 5 minutes", charts.line_chart(history.rates(seconds, "p"), RATE_SPAN)),
            ("1h", "last hour (per minute)", charts.line_chart(hour, HOUR)),
            ("24h", "last 24 hours (per minute)", charts.line_chart(history.rates(minutes, "p"), DAY)),
        ],
        "stale": not snapshot.get("live"),
    }


def consumer(snapshot: Snapshot, name: str) -> dict | None:
    info = consumer_named(snapshot, name)
    if info is None:
        return None
    ranges = []
    for key, label, resolution, span in RANGES:
        backlog, oldest = _consumer_series(name, info["topics"], resolution, span)
        ranges.append(
            {
                "key": key,
                "label": label,
                "backlog": charts.line_chart(backlog, span, unit=""),
                "pending": charts.line_chart(oldest, span, unit="s"),
            }
        )
    workers = [{**w, "mine": w["consumers"][name]} for w in snapshot["workers"] if name in w["consumers"]]
    return {
        "consumer": info,
        "chart_ranges": ranges,
        "workers": workers,
        "stale": not snapshot.get("live"),
    }


def _consumer_series(name: str, topics: list[str], resolution: str, span: float) -> tuple[list, list]:
    """Backlog (summed) and oldest pending age (worst) across the consumer's topics, over ``span`` seconds."""
    since = time.time() - span
    backlog: dict[float, float] = {}
    oldest: dict[float, float] = {}
    for topic_name in topics:
        readings = history.history(topic_name, resolution, since=since)
        for t, value in history.levels(readings, f"b:{name}"):
            backlog[t] = backlog.get(t, 0.0) + value
        for t, value in history.levels(readings, f"o:{name}"):
            oldest[t] = max(oldest.get(t, 0.0), value / 1000)
    return sorted(backlog.items()), sorted(oldest.items())


def failed_summary() -> dict:
    counts = dict(FailedEvent.objects.values_list("status").annotate(n=Count("id")).order_by())
    statuses = [(value, label, counts.get(value, 0)) for value, label in FailedEvent.Status.choices]
    return {"status_counts": statuses}


def event(name: str) -> dict | None:
    """One event and where it stands with each subscribed consumer; ``name`` is "<topic>/<stream id>".

    None once the event has left the stream (trimmed), or if the stream id is not one Redis can hold
    (an event socket's route takes any digits).
    """
    topic_name, _, stream_id = name.partition("/")
    try:
        params.stream_id(stream_id, "stream id")
    except params.BadParam:
        return None
    client = get_redis()
    envelope = inspection.find_event(client, topic_name, stream_id)
    if envelope is None:
        return None
    consumers = Consumer.objects.filter(topics__name=topic_name).order_by("name").values_list("name", flat=True)
    matrix = inspection.delivery_matrix(client, topic_name, stream_id, str(envelope.get("id", "")), list(consumers))
    sent_again = replays.sent_again(topic_name, stream_id, envelope)
    for row in matrix:  # each consumer's replayed deliveries, shown apart from its original one
        row["replays"] = [s for s in sent_again if s.consumer == row["consumer"]]
    tree = causality.tree(client, topic_name, stream_id, budget=CAUSAL_TREE_EVENTS)
    return {
        "topic_name": topic_name,
        "stream_id": stream_id,
        "event": envelope,
        "matrix": matrix,
        "sent_again": sent_again,
        "tree": tree,
    }
