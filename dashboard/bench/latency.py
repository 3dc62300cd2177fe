"""Publish→handler latency at a steady rate: Python publish and plain XADD→XREADGROUP."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from eventflow.connection import get_redis
from eventflow.publishing import publish

from .handlers import key
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

RECORDER = "dashboard.bench.handlers.record_latency"

ROWS = [
    ("latency_python", "publish → handler p99 at 5,000 ev/s, Python publish", "ms", "≤ 5 ms"),
]


def paced(rate: float, seconds: float, send: Callable[[int], None]) -> float:
    """Call ``send(i)`` ``rate`` times a second for ``seconds``; return the rate achieved."""
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        ahead = due - time.perf_counter()
        if ahead > 0.0005:
            time.sleep(ahead)
        send(i)
    return total / (time.perf_counter() - start)


def latencies(out_key: str, expected: int, timeout: float = 30) -> list[float]:
    client = get_redis()
    wait_until(lambda: client.llen(out_key) >= expected, timeout=timeout, interval=0.02)
    values = sorted(float(v) for v in client.lrange(out_key, 0, -1))
    client.unlink(out_key)
    return values


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, int(round(pct / 100 * (len(values) - 1))))
    return values[index]


def start_recorder(sandbox: Sandbox, label: str) -> tuple[Any, Any]:
    """A topic and a consumer whose worker notes latencies; returns (topic, worker process)."""
    topic = sandbox.topic(label)
    consumer = sandbox.consumer(label, RECORDER, topic)
    proc = sandbox.manage("runconsumers", "--consumer", consumer.name)
    # Ready when a warm-up event has gone through.
    publish(topic.name, {"flush": True, "t": time.time()}, type="warmup")
    if not wait_until(lambda: get_redis().llen(key("latency")) > 0, timeout=60, interval=0.02):
        raise RuntimeError("the latency worker did not start within 60 s")
    get_redis().unlink(key("latency"))
    return topic, proc


def python_latency(sandbox: Sandbox, rate: float, seconds: float, run: int = 0) -> tuple[list[float], float]:
    """Publish→handler latencies (seconds) for Python ``publish`` at ``rate``; and the rate achieved."""
    topic, proc = start_recorder(sandbox, f"latency-python{run}")
    try:
        achieved = paced(rate, seconds, lambda i: publish(topic.name, {"t": time.time(), "i": i}, type="tick"))
        publish(topic.name, {"flush": True}, type="flush")
        values = latencies(key("latency"), int(rate * seconds))
    finally:
        sandbox.stop(proc)
    return values, achieved


def raw_latency(sandbox: Sandbox, rate: float, seconds: float) -> list[float]:
    """The same, for plain XADD read by a plain blocking XREADGROUP in another process."""
    stream = f"{sandbox.prefix}{{raw-latency}}:stream"
    get_redis().unlink(stream, key("raw-latency") + ":ready")
    client = get_redis()
    client.xgroup_create(stream, "raw", id="$", mkstream=True)
    expected = int(rate * seconds)
    args = ["-m", "dashboard.bench.limits", sandbox.redis_url, stream, "raw", str(expected), key("raw-latency")]
    proc = sandbox.spawn([sys.executable, *args])
    if not wait_until(lambda: client.exists(key("raw-latency") + ":ready"), timeout=30, interval=0.01):
        raise RuntimeError("the raw latency reader did not start")
    try:
        paced(rate, seconds, lambda i: client.xadd(stream, {"e": orjson.dumps({"data": {"t": time.time()}})}))
        return latencies(key("raw-latency"), expected)
    finally:
        sandbox.stop(proc)


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    ours, raw, achieved = [], [], []
    for run in range(plan.runs):
        values, rate = python_latency(sandbox, plan.latency_rate, plan.latency_seconds, run)
        ours.append(percentile(values, 99) * 1000)
        achieved.append(rate)
        raw.append(percentile(raw_latency(sandbox, plan.latency_rate, plan.latency_seconds), 99) * 1000)
    figure, limit = Figure.of(ours), Figure.of(raw)
    sandbox.context["raw_latency"] = limit
    path = f"publish → handler p99 at {plan.latency_rate:,.0f} ev/s, Python publish"
    return [
        Row(
            key="latency_python",
            path=path,
            unit="ms",
            target="≤ 5 ms",
            figure=figure,
            limit=limit,
            limit_label="XADD → blocking XREADGROUP",
            ratio=ratio(figure, limit),
            met=figure.median <= 5.0,
            note=f"publisher achieved {min(achieved):,.0f}–{max(achieved):,.0f} ev/s",
        ),
    ]
