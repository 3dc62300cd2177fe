"""Running the benchmark: every hot path beside its limit, measured in the same run.

Each measuring module returns table rows; ``run()`` calls them in turn inside
one throwaway sandbox. A path that cannot be measured here (a missing
optional dependency, a part of the product not built yet, an error) becomes a
"not measured" row naming the reason; nothing is estimated or made up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .sandbox import Sandbox
from .table import Row, not_measured

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Plan:
    """How big one benchmark run is."""

    quick: bool
    runs: int
    delivery_events: int
    latency_rate: float
    latency_seconds: float
    worker_counts: tuple[int, ...]
    server_counts: tuple[int, ...]
    http_seconds: float
    soak_seconds: float  # web and worker processes under load, RSS sampled
    live_warm: float  # seconds a tab or socket settles before it is measured
    live_seconds: float  # seconds the browser tab and the many sockets are measured

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 1, 3_000, 1_000, 0.5, (1,), (2,), 1.0, 3.0, 1.0, 2.5)
        return cls(False, 5, 150_000, 5_000, 4.0, (1, 2, 4), (1, 2), 4.0, 600.0, 3.0, 20.0)


Section = Callable[[Sandbox, Plan], list[Row]]


def sections() -> list[tuple[str, Section, list[tuple[str, str, str, str]]]]:
    """Each section with the rows it owes (key, path, unit, target) if it fails."""
    from . import (
        celery_peer,
        dashboard,
        delivery,
        http,
        latency,
        live,
        memory,
        peers,
        publish,
        replay_rewind,
        scrape,
        trace_cost,
    )

    return [
        ("python publish", publish.measure, publish.ROWS),
        ("delivery", delivery.measure, delivery.ROWS),
        ("trace propagation", trace_cost.measure, trace_cost.ROWS),
        ("replay rewind", replay_rewind.measure, replay_rewind.ROWS),
        ("latency", latency.measure, latency.ROWS),
        ("http publish", http.measure, http.ROWS),
        ("celery", celery_peer.measure, celery_peer.ROWS),
        ("peers", peers.measure, peers.ROWS),  # after Celery: its drain joins the peers' drain row
        # Before the 1,000-topic dashboard section: the monitor here samples only this run's topics.
        ("live dashboard and soak", live.measure, live.ROWS),
        ("dashboard", dashboard.measure, dashboard.ROWS),
        ("metrics scrape", scrape.measure, scrape.ROWS),  # after the dashboard: the same 1,000 topics
        ("memory", memory.measure, memory.ROWS),
    ]


def section_names() -> list[str]:
    return [name for name, _, _ in sections()]


def run(quick: bool, say: Callable[[str], None] = print, only: list[str] | None = None) -> list[Row]:
    """Run every section (or those named in ``only``); return the rows in table order."""
    plan = Plan.make(quick)
    rows: list[Row] = []
    with Sandbox() as sandbox:
        context: dict = {}
        sandbox.context = context
        for name, section, owed in sections():
            if only and name not in only:
                continue
            say(f"benchmark: {name}…")
            try:
                rows += section(sandbox, plan)
            except Exception as exc:  # noqa: BLE001 - one broken path must not hide the others
                logger.exception("benchmark section %s failed", name)
                reason = f"{name} failed: {type(exc).__name__}: {exc}"[:200]
                rows += [not_measured(key, path, unit, target, reason) for key, path, unit, target in owed]
    return order(rows)


ORDER = [
    "http_publish_batch",
    "http_publish_single",
    "python_publish_batch",
    "python_publish_single",
    "delivery",
    "delivery_vs_celery",
    "trace_propagation",
    "trace_carried",
    "latency_python",
    "latency_http",
    "latency_celery",
    "peers_batch",
    "peers_single",
    "peers_drain",
    "peers_p99_1k",
    "peers_p99_5k",
    "browser_visible",
    "dashboard_tabs",
    "overview_page",
    "monitor_tick",
    "failed_page",
    "replay_all",
    "metrics_scrape",
    "replay_rewind",
    "memory_web",
    "memory_worker",
    "redis_bytes_per_event",
]


def order(rows: list[Row]) -> list[Row]:
    rank = {key: i for i, key in enumerate(ORDER)}
    return sorted(rows, key=lambda r: rank.get(r.key, len(ORDER)))
