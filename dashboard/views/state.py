"""Template contexts for the live regions, built from a monitor snapshot.

The page views, the WebSocket snapshot and the monitor's pushes all build
their context here, so a partial looks the same however it is delivered.
"""

from __future__ import annotations

import time

from django.db.models import Count

from eventflow import causality, history, inspection
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent

from . import charts

TABLE_ROWS = 200  # consumers listed on the overview; the worst come first
RATE_SPAN = 300.0  # seconds in the per-second charts
DAY = 86400.0
CAUSAL_TREE_EVENTS = 30  # events drawn in an event page's causal tree (it is rebuilt every second)


def overview(snapshot: dict) -> dict:
    consumers = sorted(snapshot["consumers"], key=lambda c: (charts.SEVERITY.get(c["status"], 5), c["name"]))
    for consumer in consumers:
        consumer["sparkline"] = charts.sparkline(consumer.get("spark") or [])
    return {
        "snap": snapshot,
        "totals": snapshot["totals"],
        "graph": charts.topology(snapshot),
        "consumers": consumers[:TABLE_ROWS],
        "more_consumers": max(0, len(consumers) - TABLE_ROWS),
        "stale": not snapshot.get("live"),
        "drift": snapshot.get("drift") or [],
    }


def topic(snapshot: dict, name: str) -> dict | None:
    info = next((t for t in snapshot["topics"] if t["name"] == name), None)
    if info is None:
        return None
    now = time.time()
    recent = history.rates(history.history(name, "s", since=now - RATE_SPAN), "p")
    daily = [(t, r) for t, r in history.rates(history.history(name, "m", since=now - DAY), "p")]
    lanes = [
        {**c, "lane_rate": snapshot["edges"]["consume"].get(f"{name}|{c['name']}", 0.0)}
        for c in snapshot["consumers"]
        if c["name"] in info["consumers"]
    ]
    return {
        "topic": info,
        "lanes": lanes,
        "recent_chart": charts.line_chart(recent, RATE_SPAN),
        "daily_chart": charts.line_chart(daily, DAY),
        "stale": not snapshot.get("live"),
    }


def consumer(snapshot: dict, name: str) -> dict | None:
    info = next((c for c in snapshot["consumers"] if c["name"] == name), None)
    if info is None:
        return None
    backlog, oldest = _consumer_series(name, info["topics"])
    workers = [w for w in snapshot["workers"] if name in w["consumers"]]
    for worker in workers:
        worker["mine"] = worker["consumers"][name]
    return {
        "consumer": info,
        "backlog_chart": charts.line_chart(backlog, RATE_SPAN, unit=""),
        "pending_chart": charts.line_chart(oldest, RATE_SPAN, unit="s"),
        "workers": workers,
        "stale": not snapshot.get("live"),
    }


def _consumer_series(name: str, topics: list[str]) -> tuple[list, list]:
    """Backlog (summed) and oldest pending age (worst) across the consumer's topics."""
    since = time.time() - RATE_SPAN
    backlog: dict[float, float] = {}
    oldest: dict[float, float] = {}
    for topic_name in topics:
        readings = history.history(topic_name, "s", since=since)
        for t, value in history.levels(readings, f"b:{name}"):
            backlog[t] = backlog.get(t, 0.0) + value
        for t, value in history.levels(readings, f"o:{name}"):
            oldest[t] = max(oldest.get(t, 0.0), value / 1000)
    return sorted(backlog.items()), sorted(oldest.items())


def failed_summary() -> dict:
    counts = dict(FailedEvent.objects.values_list("status").annotate(n=Count("id")).order_by())
    statuses = [(value, label, counts.get(value, 0)) for value, label in FailedEvent.Status.choices]
    return {"status_counts": statuses, "open_count": counts.get("failed", 0) + counts.get("failed_again", 0)}


def event(name: str) -> dict | None:
    """One event and where it stands with each subscribed consumer; ``name`` is "<topic>/<stream id>".

    None once the event has left the stream (trimmed).
    """
    topic_name, _, stream_id = name.partition("/")
    client = get_redis()
    envelope = inspection.find_event(client, topic_name, stream_id)
    if envelope is None:
        return None
    consumers = Consumer.objects.filter(topics__name=topic_name).order_by("name").values_list("name", flat=True)
    matrix = inspection.delivery_matrix(client, topic_name, stream_id, str(envelope.get("id", "")), list(consumers))
    tree = causality.tree(client, topic_name, stream_id, budget=CAUSAL_TREE_EVENTS)
    return {"topic_name": topic_name, "stream_id": stream_id, "event": envelope, "matrix": matrix, "tree": tree}
