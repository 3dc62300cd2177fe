"""HTTP publishing through the real ASGI server (daphne), beside a raw ASGI endpoint.

Both are served the same way: N daphne processes sharing one listening
socket (``--fd``), loaded by ``loadgen`` over loopback with keep-alive.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.conf import settings

from eventflow import keys
from eventflow.connection import get_redis
from . import loadgen
from .handlers import key
from .latency import latencies, percentile, start_recorder
from .publish import sample_events
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

ROWS = [
    ("http_publish_batch", "HTTP publish, batches of 100, 2 server processes", "ev/s", "≥ 70 % of the raw ASGI limit"),
    (
        "http_publish_single",
        "HTTP publish, one event per request, 2 processes",
        "req/s",
        "≥ 50 % of the raw ASGI limit",
    ),
    ("latency_http", "publish → handler p99 at 5,000 ev/s, HTTP", "ms", "≤ 10 ms"),
]
RAW_APP = "dashboard.bench.limits:raw_app"
PER_REQUEST = 10  # events per request in the latency run: one per request saturates daphne near 1k req/s here
URL = "/api/v1/topics/{}/events"


class Servers:
    """``count`` daphne processes serving ``app`` on one shared loopback socket."""

    def __init__(self, sandbox: Sandbox, app: str, count: int, **env: str) -> None:
        self.sandbox = sandbox
        self.app = app
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.listener.set_inheritable(True)
        self.port = self.listener.getsockname()[1]
        fd = self.listener.fileno()
        args = [sys.executable, "-m", "daphne", "-v", "0", "--fd", str(fd), app]
        self.procs = [sandbox.spawn(args, pass_fds=(fd,), **env) for _ in range(count)]

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sandbox.stop_all(self.procs)
        self.listener.close()

    def wait_ready(self, make: Any) -> None:
        def answers() -> bool:
            try:
                return loadgen.drive(self.port, make, seconds=0.2, connections=1).ok > 0
            except OSError:
                return False

        if not wait_until(answers, timeout=60, interval=0.2):
            raise RuntimeError("the ASGI server did not answer within 60 s")


def project_app() -> str:
    module, _, name = settings.ASGI_APPLICATION.rpartition(".")
    return f"{module}:{name}"


def _bodies(size: int) -> list[bytes]:
    events = sample_events(size)
    if size == 1:
        return [orjson.dumps(events[0])]
    return [orjson.dumps({"events": events})]


def throughput(servers: Servers, token: str, topic: str, size: int, seconds: float, stream: str) -> float:
    """Events/s that ``servers`` accept in batches of ``size``; ``stream`` is emptied afterwards."""
    payload = loadgen.request(URL.format(topic), token, _bodies(size)[0])
    load = loadgen.drive(servers.port, lambda i: payload, seconds=seconds, connections=16 * len(servers.procs))
    bad = {s: n for s, n in load.statuses.items() if not 200 <= s < 300}
    if bad:
        raise RuntimeError(f"{servers.app} answered {bad}")
    get_redis().unlink(stream)
    return load.rate * size


@contextmanager
def _served(sandbox: Sandbox, topic: str, processes: int, raw_stream: str) -> Iterator[tuple[Servers, Servers]]:
    """EventFlow's servers and the raw ones, ``processes`` each, started together and ready."""
    payload = loadgen.request(URL.format(topic), sandbox.token, _bodies(1)[0])
    with (
        Servers(sandbox, project_app(), processes) as ours,
        Servers(sandbox, RAW_APP, processes, EVENTFLOW_BENCH_STREAM=raw_stream) as raw,
    ):
        ours.wait_ready(lambda i: payload)
        raw.wait_ready(lambda i: payload)
        yield ours, raw


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    """Servers start once per process count; runs alternate EventFlow and raw on warm servers."""
    topic = sandbox.topic("http")
    sandbox.producer(topic)
    raw_stream = f"{sandbox.prefix}{{raw-http}}:stream"
    rows = []
    with _served(sandbox, topic.name, 2, raw_stream) as (ours, raw):
        for key_, size, share in (("http_publish_batch", 100, 0.70), ("http_publish_single", 1, 0.50)):
            figure, limit = _pairs(sandbox, topic.name, ours, raw, size, plan, raw_stream)
            unit = "ev/s" if size > 1 else "req/s"
            path = dict((k, p) for k, p, _, _ in ROWS)[key_]
            r = ratio(figure, limit)
            rows.append(Row(key=key_, path=path, unit=unit, target=f"≥ {share:.0%} of the raw ASGI limit",
                            figure=figure, limit=limit, limit_label="raw ASGI + orjson + XADD, same server",
                            ratio=r, met=r is not None and r >= share))  # fmt: skip
        latency = _latency_row(sandbox, plan, ours)
    for processes in plan.server_counts:
        if processes == 2:
            continue
        with _served(sandbox, topic.name, processes, raw_stream) as (ours, raw):
            figure, limit = _pairs(sandbox, topic.name, ours, raw, 100, plan, raw_stream)
        label = f"HTTP publish, batches of 100, {processes} server process(es) (scale-out)"
        rows.append(Row(key=f"http_publish_batch_{processes}p", path=label,
                        unit="ev/s", target="scaling vs 2 processes", figure=figure, limit=limit,
                        limit_label="raw ASGI, same server", ratio=ratio(figure, limit)))  # fmt: skip
    return [*rows, latency]


def _pairs(
    sandbox: Sandbox, topic: str, ours: Servers, raw: Servers, size: int, plan: Any, raw_stream: str
) -> tuple[Figure, Figure]:
    mine, limits = [], []
    runs = 1 if plan.quick else max(2, plan.runs // 2)
    for _ in range(runs):
        mine.append(throughput(ours, sandbox.token, topic, size, plan.http_seconds, keys.stream(topic)))
        limits.append(throughput(raw, sandbox.token, topic, size, plan.http_seconds, raw_stream))
    return Figure.of(mine), Figure.of(limits)


def _latency_row(sandbox: Sandbox, plan: Any, servers: Servers) -> Row:
    """POSTs of ``PER_REQUEST`` events at a steady rate, each carrying its send time, to a recording handler."""
    topic, worker = start_recorder(sandbox, "latency-http")
    sandbox.producer_for(topic)
    path = URL.format(topic.name)
    rate = plan.latency_rate

    def make(i: int) -> bytes:
        now = time.time()
        events = [{"type": "tick", "data": {"t": now, "i": i}}] * PER_REQUEST
        return loadgen.request(path, sandbox.token, orjson.dumps({"events": events}))

    flush = loadgen.request(path, sandbox.token, orjson.dumps({"type": "flush", "data": {"flush": True}}))
    try:
        # Warm every connection at this rate first (the servers are warm already):
        # a cold start is not a steady-state latency. A flush event makes the
        # recorder push what it holds, so the warm-up's notes can be drained.
        warm = loadgen.drive(servers.port, make, seconds=1.0, rate=rate / PER_REQUEST, connections=32)
        loadgen.drive(servers.port, lambda i: flush, seconds=0.05, connections=1)
        latencies(key("latency"), warm.ok * PER_REQUEST, timeout=10)  # drained, then forgotten
        load = loadgen.drive(servers.port, make, seconds=plan.latency_seconds, rate=rate / PER_REQUEST, connections=32)
        loadgen.drive(servers.port, lambda i: flush, seconds=0.05, connections=1)
        values = latencies(key("latency"), load.ok * PER_REQUEST)
    finally:
        sandbox.stop(worker)
    figure = Figure.of([percentile(values, 99) * 1000])
    limit = sandbox.context.get("raw_latency")
    k, p, unit, target = ROWS[2]
    return Row(key=k, path=p.replace("5,000", f"{rate:,.0f}"), unit=unit, target=target, figure=figure, limit=limit,
               limit_label="XADD → blocking XREADGROUP", ratio=ratio(figure, limit), met=figure.median <= 10.0,
               note=f"{load.rate * PER_REQUEST:,.0f} ev/s achieved in requests of {PER_REQUEST} events, "
               "2 server processes")  # fmt: skip
