"""A replay job's rewind beside the same consumer's normal delivery, in one worker process.

The topic is filled once and one worker process (``manage.py runconsumers``)
runs a no-op consumer. Each run measures, in turn on that same process:

1. normal delivery of the backlog: from the first ack to the last (the first
   run), or from moving the group back to the stream's start (the others);
2. a replay job of the whole range to that consumer, no rate limit, from
   Start (``replays.start``) to the job's row saying done: planning left out,
   the feeder's pick-up, the copying and every tally included.

The rewind's target is half of normal delivery (issue 14).
"""

from __future__ import annotations

import time
from typing import Any

from eventflow import keys, replays
from eventflow.connection import get_redis
from eventflow.models import Replay

from .delivery import NOOP, _acked, _fill
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

ROWS = [
    (
        "replay_rewind",
        "rewind of N retained events to one consumer, no rate limit",
        "ev/s",
        "≥ 50 % of normal delivery",
    ),
]
TARGET = 0.50


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    count, runs = plan.delivery_events, plan.runs
    topic = sandbox.topic("rewind")
    consumer = sandbox.consumer("rewind", NOOP, topic)  # its group starts at the stream's end: the fill is new
    _fill(topic.name, count)
    proc = sandbox.manage("runconsumers", "--consumer", consumer.name)
    normals, rewinds = [], []
    try:
        for run in range(runs):
            normals.append(_normal_rate(topic, consumer, count, first=run == 0))
            rewinds.append(_rewind_rate(topic, consumer, count))
    finally:
        sandbox.stop(proc)
    normal, rewind = Figure.of(normals), Figure.of(rewinds)
    share = ratio(rewind, normal)
    key, _, unit, target = ROWS[0]
    return [
        Row(
            key=key,
            path=f"rewind of {count:,} retained events to one consumer, no rate limit",
            unit=unit,
            target=target,
            figure=rewind,
            limit=normal,
            limit_label="normal delivery, same worker process",
            ratio=share,
            met=share is not None and share >= TARGET,
            note="from Start to done: the feeder's pick-up and the tallies included",
        )
    ]


def _normal_rate(topic: Any, consumer: Any, count: int, *, first: bool) -> float:
    """Events/s the worker delivers the whole backlog at (again, after the first run)."""
    group = consumer.group_name
    if first:
        if not wait_until(lambda: _acked(topic.stream_name, group) > 0, timeout=60):
            raise RuntimeError("the worker process acked nothing within 60 s")
    else:
        get_redis().xgroup_setid(keys.stream(topic.stream_name), keys.group(group), "0")
    started, base = time.perf_counter(), _acked(topic.stream_name, group)
    done = base + count if not first else count
    if not wait_until(lambda: _acked(topic.stream_name, group) >= done, timeout=300, interval=0.002):
        raise RuntimeError(f"the worker acked only {_acked(topic.stream_name, group) - base} of {count} again")
    return (done - base) / (time.perf_counter() - started)


def _rewind_rate(topic: Any, consumer: Any, count: int) -> float:
    """Events/s a replay job of the whole retained range reaches, from Start to done."""
    job_plan = replays.plan_history(consumer, topic, (0, 0), None, replays.Filters())
    if job_plan.matching != count:
        raise RuntimeError(f"the plan matched {job_plan.matching} of the {count} retained events")
    started = time.perf_counter()
    job = replays.start(job_plan, consumer, topic, user=None, reason="benchmark", rate=None)
    done = Replay.objects.filter(pk=job.pk, state=Replay.State.DONE)
    if not wait_until(done.exists, timeout=600, interval=0.005):
        raise RuntimeError(f"replay {job.pk} did not finish within 600 s")
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    if job.handled != count:
        raise RuntimeError(f"replay {job.pk} handled {job.handled} of {count}")
    return count / elapsed
