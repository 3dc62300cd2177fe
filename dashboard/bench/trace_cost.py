"""Trace propagation's cost on delivery: traced events beside plain ones, in the same run.

Each run delivers the same sample events three ways, each by its own worker
process (``delivery.eventflow_rate``), in an order that rotates from run to run:

- traced: every event carries a ``traceparent`` and a ``tracestate``, and its
  handler (``handlers.inherit_trace``) takes what an event it published would
  inherit (``tracing.inherit``: the handled event as ``causationid``, a child
  ``traceparent``), without publishing it (publishing is its own row);
- carried (full runs only): the same traced events to the no-op handler
  (what the trace context costs delivery alone), shown in the note;
- plain: no trace context, the no-op handler.

The row is the traced rate beside the plain one; a cost of at most 5 % is a
share of at least 95 %. The note adds the same comparison in the worker's CPU
time per event, which waiting for a core on a shared machine does not blur.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .delivery import NOOP, eventflow_rate
from .publish import sample_events
from .sandbox import Sandbox
from .table import Figure, Row, ratio

ROWS = [
    (
        "trace_propagation",
        "delivery with traceparent and inherited causation, one worker process",
        "ev/s",
        "≥ 95 % of delivery without (cost ≤ 5 %)",
    ),
]
TARGET = 0.95
INHERIT = "dashboard.bench.handlers.inherit_trace"
QUICK_EVENTS = 20_000  # the quick delivery row's 3,000 take ~50 ms: too short to compare three flows


def traced_events(count: int) -> list[dict[str, Any]]:
    """The sample events, each in a trace of its own, with a vendor's tracestate."""
    return [
        {**event, "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01", "tracestate": "ef=bench"}
        for event in sample_events(count)
    ]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    count = QUICK_EVENTS if plan.quick else plan.delivery_events
    flows: dict[str, Callable[[int], float]] = {
        "traced": lambda n: eventflow_rate(sandbox, count, 1, f"traced{n}", traced_events(count), INHERIT),
        "carried": lambda n: eventflow_rate(sandbox, count, 1, f"carried{n}", traced_events(count), NOOP),
        "plain": lambda n: eventflow_rate(sandbox, count, 1, f"plain{n}"),
    }
    if plan.quick:
        del flows["carried"]  # a worker process's start-up is most of a quick flow's time
    names = list(flows)
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}  # worker CPU µs per event
    for n in range(plan.runs):
        for name in names[n % len(names) :] + names[: n % len(names)]:  # rotated: a busier machine favours none
            rates[name].append(flows[name](n))
            cpu[name].append(sandbox.last_cpu_per_event * 1e6)
    figures = {name: Figure.of(rates[name]) for name in names}
    cpu_figures = {name: Figure.of(cpu[name]) for name in names}
    traced, plain = figures["traced"], figures["plain"]
    share = ratio(traced, plain)
    key, path, unit, target = ROWS[0]
    per_event = ", ".join(f"{name} {figure.median:.1f} µs" for name, figure in cpu_figures.items())
    note = f"{count:,} events per run; worker CPU per event {per_event} "
    note += f"(share by CPU {ratio(cpu_figures['plain'], cpu_figures['traced']):.2f})"
    if "carried" in figures:
        carried = figures["carried"]
        note += f"; carried (traced events, no-op handler): {carried.median:,.0f} ev/s, "
        note += f"{ratio(carried, plain):.2f} of plain"
    return [
        Row(
            key=key,
            path=path,
            unit=unit,
            target=target,
            figure=traced,
            limit=plain,
            limit_label="no trace context, no-op handler",
            ratio=share,
            met=share is not None and share >= TARGET,
            note=note,
            extra={"rates": figures, "cpu_us_per_event": cpu_figures},
        )
    ]
