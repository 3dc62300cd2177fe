"""The monitor's snapshot: one sample of the whole flow, as typed records.

``eventflow.monitor`` builds a ``Snapshot`` each step and stores it in Redis as
JSON; ``/metrics`` (``eventflow.metrics``), the alert rules, the drift checks
and the dashboard (views, live push, templates) read it. The records are
TypedDicts because the snapshot crosses processes as JSON: what is stored is
what is read, with no conversion either way, and templates reach fields by
dotted name as before. Add a field here first, then where the monitor fills it.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Totals(TypedDict):
    published_rate: float
    acked_rate: float  # handled (not type-filtered) events per second, summed over consumers
    backlog: int
    failed: int  # replayable failed events
    topics: int
    producers: int
    consumers: int
    workers: int
    unhealthy: int  # consumers whose status is not OK
    trimmed: int  # events retention cut before a consumer acknowledged them
    # Averaged over the last MONITOR_SMOOTH_SECONDS (``monitor.smooth_totals``); absent from a bare build.
    smoothed_over: NotRequired[float]
    published_rate_smoothed: NotRequired[float]
    acked_rate_smoothed: NotRequired[float]


class TopicState(TypedDict):
    name: str
    active: bool
    rate: float  # published per second
    published: int
    length: int  # entries in the stream
    producers: list[str]
    consumers: list[str]


class ProducerState(TypedDict):
    name: str
    topics: list[str]


class ConsumerState(TypedDict):
    name: str
    topics: list[str]
    paused: bool
    status: str  # an ``eventflow.health.Status``
    reason: str  # why, in words
    value: float  # the figure that decided the status
    lag: int
    pending: int
    retrying: int
    backlog: int  # lag + pending + retrying
    oldest_pending: float  # seconds
    rate: float  # handled per second
    errors_in_window: int
    acked: int
    dead: int
    dead_in_window: int
    skipped: int  # passed over by its event-type filter
    trimmed: int
    infra_errors: int  # database and Redis failures its workers met (not the handler's)
    parked_dead_letters: int  # dead letters in the outbox, not yet in the database
    handler_error: str  # a worker's last handler import or configuration error
    failed: int  # replayable failed events
    workers: int  # live workers
    in_flight: int
    spark: list[float]  # recent rates, oldest first
    stall_threshold: float


class WorkerState(TypedDict):
    id: str
    host: str
    pid: int | None
    started_at: float | None
    beat_age: float  # seconds since its last heartbeat
    consumers: dict[str, dict[str, Any]]  # consumer name -> what the worker reports of it


class LaneState(TypedDict):
    """One consumer on one topic, raw, for ``/metrics``."""

    topic: str
    consumer: str
    lag: int
    pending: int
    retrying: int
    oldest_pending: float


class Edges(TypedDict):
    produce: dict[str, float]  # "producer|topic" -> events per second
    consume: dict[str, float]  # "topic|consumer" -> events per second


class DatabaseState(TypedDict):
    status: str  # "ok" or "down"
    error: str


class Snapshot(TypedDict):
    at: float  # unix time of the reading
    live: bool  # False for a first or one-off sample: no rates yet
    totals: Totals
    topics: list[TopicState]
    producers: list[ProducerState]
    consumers: list[ConsumerState]
    edges: Edges
    workers: list[WorkerState]
    lanes: list[LaneState]
    counters: dict[str, dict[str, int]]  # topic -> its counter hash (Redis's own, monotonic)
    # Added by ``Monitor.step`` after the build:
    broker: NotRequired[dict[str, Any]]  # ``eventflow.status.broker_status``
    database: NotRequired[DatabaseState]
    drift: NotRequired[list[dict[str, str]]]  # ``eventflow.drift.Finding``s as dicts


def consumer_named(snapshot: Snapshot, name: str) -> ConsumerState | None:
    return next((c for c in snapshot["consumers"] if c["name"] == name), None)


def topic_named(snapshot: Snapshot, name: str) -> TopicState | None:
    return next((t for t in snapshot["topics"] if t["name"] == name), None)
