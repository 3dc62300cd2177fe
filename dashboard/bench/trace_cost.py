"""Trace propagation's cost on delivery: traced events beside plain ones, in the same run.

Trace context is inherited only when a handler publishes, so the fair
comparison is between two handlers that both publish. Each run delivers
sample events four ways, each by its own worker process
(``delivery.eventflow_rate``), in an order that rotates from run to run:

- traced: every event carries a ``traceparent`` and a ``tracestate``; its
  handler (``handlers.publish_onward``) publishes one event onward with
  ``eventflow.publishing.publish``, which inherits on its real path (a child
  ``traceparent``, the ``tracestate``);
- plain: the same handler publishing onward, the events without trace context.
  Both flows' onward events name their cause (``causationid``, remembered for
  the causal tree): that is publishing from a handler, traced or not;
- carried: the traced events to the no-op handler (what trace context costs
  delivery alone, nothing published);
- bare: the plain events to the no-op handler.

Row ``trace_propagation`` is traced beside plain, row ``trace_carried`` is
carried beside bare; a cost of at most 5 % is a share of at least 95 %. Each
note adds the same comparison in the worker's CPU time per event, which
waiting for a core on a shared machine does not blur. After each publishing
flow the onward events are checked (one per event, traced ones in the cause's
trace) and removed with the causal-tree notes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson

from eventflow import keys, tracing
from eventflow.connection import get_redis

from .delivery import NOOP, eventflow_rate
from .handlers import ONWARD
from .publish import sample_events
from .sandbox import Sandbox
from .table import Figure, Row, ratio

TARGET = 0.95
TARGET_TEXT = "≥ 95 % of the same without trace context (cost ≤ 5 %)"
ROWS = [
    ("trace_propagation", "delivery to a handler publishing onward, traced, one worker process", "ev/s", TARGET_TEXT),
    ("trace_carried", "delivery carrying trace context, no-op handler, one worker process", "ev/s", TARGET_TEXT),
]
PUBLISH_ONWARD = "dashboard.bench.handlers.publish_onward"
TRACESTATE = "ef=bench"
# Quick runs: a worker process's start-up is most of a flow's time, so the flows stay short.
QUICK_EVENTS = {"publishing": 3_000, "no-op": 20_000}
PUBLISHING_SHARE = 5  # full runs: a publishing flow takes ~10x a no-op one per event, so 1/5 of the events


def traced_events(count: int) -> list[dict[str, Any]]:
    """The sample events, each in a trace of its own, with a vendor's tracestate."""
    return [
        {**event, "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01", "tracestate": TRACESTATE}
        for event in sample_events(count)
    ]


def onward_rate(sandbox: Sandbox, count: int, label: str, events: list[dict[str, Any]] | None) -> float:
    """Events/s delivered to ``publish_onward``; then its onward events are checked and removed."""
    onward = sandbox.topic(f"{label}{ONWARD}")
    rate = eventflow_rate(sandbox, count, 1, label, events, PUBLISH_ONWARD)
    client, stream = get_redis(), keys.stream(onward.name)
    published, entries = client.xlen(stream), client.xrange(stream, count=1)
    first = orjson.loads(entries[0][1][b"e"]) if entries else {}
    client.unlink(stream)
    caused = list(client.scan_iter(match=keys.caused(onward.name.removesuffix(ONWARD), "*"), count=1000))
    for offset in range(0, len(caused), 500):
        client.unlink(*caused[offset : offset + 500])
    parent, state = first.get(tracing.TRACEPARENT), first.get(tracing.TRACESTATE)
    inherited = tracing.valid_traceparent(parent) and state == TRACESTATE
    if published != count or "causationid" not in first or inherited != (events is not None):
        raise RuntimeError(f"{label}: {published} of {count} events published onward, the first {first}")
    return rate


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    if plan.quick:
        publishing, noop = QUICK_EVENTS["publishing"], QUICK_EVENTS["no-op"]
    else:
        publishing, noop = plan.delivery_events // PUBLISHING_SHARE, plan.delivery_events
    flows: dict[str, Callable[[int], float]] = {
        "traced": lambda n: onward_rate(sandbox, publishing, f"traced{n}", traced_events(publishing)),
        "plain": lambda n: onward_rate(sandbox, publishing, f"plain{n}", None),
        "carried": lambda n: eventflow_rate(sandbox, noop, 1, f"carried{n}", traced_events(noop), NOOP),
        "bare": lambda n: eventflow_rate(sandbox, noop, 1, f"bare{n}"),
    }
    names = list(flows)
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}  # worker CPU µs per event
    for n in range(plan.runs):
        for name in names[n % len(names) :] + names[: n % len(names)]:  # rotated: a busier machine favours none
            rates[name].append(flows[name](n))
            cpu[name].append(sandbox.last_cpu_per_event * 1e6)
    figures = {name: Figure.of(rates[name]) for name in names}
    cpu_figures = {name: Figure.of(cpu[name]) for name in names}

    def row(index: int, flow: str, without: str, count: int, limit_label: str) -> Row:
        key, path, unit, target = ROWS[index]
        share = ratio(figures[flow], figures[without])
        per_event = f"{flow} {cpu_figures[flow].median:.1f} µs, {without} {cpu_figures[without].median:.1f} µs"
        note = f"{count:,} events per run; worker CPU per event {per_event} "
        note += f"(share by CPU {ratio(cpu_figures[without], cpu_figures[flow]):.2f})"
        return Row(
            key=key,
            path=path,
            unit=unit,
            target=target,
            figure=figures[flow],
            limit=figures[without],
            limit_label=limit_label,
            ratio=share,
            met=share is not None and share >= TARGET,
            note=note,
            extra={"rates": {f: figures[f] for f in (flow, without)}, "cpu_us_per_event": cpu_figures},
        )

    return [
        row(0, "traced", "plain", publishing, "the same handler, no trace context"),
        row(1, "carried", "bare", noop, "no trace context"),
    ]
