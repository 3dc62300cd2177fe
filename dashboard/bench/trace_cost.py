"""Trace propagation's cost on delivery: traced events beside plain ones, in the same run.

Runs alternate between two flows of the same sample events, each delivered
by its own worker process (``delivery.eventflow_rate``):

- traced: every event carries a ``traceparent`` and a ``tracestate``, and its
  handler (``handlers.inherit_trace``) takes what an event it published would
  inherit (``tracing.inherit``: the handled event as ``causationid``, a child
  ``traceparent``), without publishing it (publishing is its own row);
- plain: no trace context, the no-op handler.

The row is the traced rate beside the plain one; a cost of at most 5 % is a
share of at least 95 %.
"""

from __future__ import annotations

import os
from typing import Any

from .delivery import eventflow_rate
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


def traced_events(count: int) -> list[dict[str, Any]]:
    """The sample events, each in a trace of its own, with a vendor's tracestate."""
    return [
        {**event, "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01", "tracestate": "ef=bench"}
        for event in sample_events(count)
    ]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    count = plan.delivery_events
    traced, plain = [], []
    for n in range(plan.runs):
        traced.append(eventflow_rate(sandbox, count, 1, f"traced{n}", traced_events(count), INHERIT))
        plain.append(eventflow_rate(sandbox, count, 1, f"untraced{n}"))
    figure, limit = Figure.of(traced), Figure.of(plain)
    share = ratio(figure, limit)
    key, path, unit, target = ROWS[0]
    return [
        Row(
            key=key,
            path=path,
            unit=unit,
            target=target,
            figure=figure,
            limit=limit,
            limit_label="no trace context, no-op handler",
            ratio=share,
            met=share is not None and share >= TARGET,
            note=f"{count:,} events per run, traced and plain runs alternating",
        )
    ]
