"""HTTP publishing through the real ASGI server (daphne), beside a raw ASGI endpoint.

Both are served the same way: N daphne processes sharing one listening
socket (``--fd``), loaded by ``loadgen`` over loopback with keep-alive.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

import orjson
from django.conf import settings

from .. import keys
from ..connection import get_redis
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
RAW_APP = "eventflow.bench.limits:raw_app"
PER_REQUEST = 10  # events per request in the latency run: one per request saturates daphne near 1k req/s here
URL = "/api/v1/topics/{}/events"


class Servers:
    """``count`` daphne processes serving ``app`` on one shared loopback socket."""

    def __init__(self, sandbox: Sandbox, app: str, count: int, **env: str) -> None:
        self.sandbox = sandbox
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
        for proc in self.procs:
            self.sandbox.stop(proc)
        self.listener.close()

    def wait_ready(self, make: Any) -> None:
        def answers() -> bool:
            try:
                return loadgen.drive(self.port, make, seconds=0.2, connections=1).ok > 0
            except OSError:
                return False

        if not wait_until(answers, timeout=60, interval=0.2):
            raise RuntimeError("the ASGI server did not answer within 60 s")


def _project_app() -> str:
    module, _, name = settings.ASGI_APPLICATION.rpartition(".")
    return f"{module}:{name}"


def _bodies(size: int) -> list[bytes]:
    events = sample_events(size)
    if size == 1:
        return [orjson.dumps(events[0])]
    return [orjson.dumps({"events": events})]


def throughput(sandbox: Sandbox, app: str, topic: str, processes: int, size: int, seconds: float, **env: str) -> float:
    """Events/s that ``processes`` servers of ``app`` accept in batches of ``size``."""
    payload = loadgen.request(URL.format(topic), sandbox.token, _bodies(size)[0])
    with Servers(sandbox, app, processes, **env) as servers:
        servers.wait_ready(lambda i: payload)
        load = loadgen.drive(servers.port, lambda i: payload, seconds=seconds, connections=16 * processes)
    bad = {s: n for s, n in load.statuses.items() if not 200 <= s < 300}
    if bad:
        raise RuntimeError(f"{app} answered {bad}")
    get_redis().unlink(keys.stream(topic))
    return load.rate * size


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    topic = sandbox.topic("http")
    sandbox.producer(topic)
    raw_env = {"EVENTFLOW_BENCH_STREAM": f"{sandbox.prefix}{{raw-http}}:stream"}
    rows = []
    for key_, size, share in (("http_publish_batch", 100, 0.70), ("http_publish_single", 1, 0.50)):
        ours, raw = _pairs(sandbox, topic.name, 2, size, plan, raw_env)
        unit = "ev/s" if size > 1 else "req/s"
        path = dict((k, p) for k, p, _, _ in ROWS)[key_]
        r = ratio(ours, raw)
        rows.append(Row(key=key_, path=path, unit=unit, target=f"≥ {share:.0%} of the raw ASGI limit", figure=ours,
                        limit=raw, limit_label="raw ASGI + orjson + XADD, same server", ratio=r,
                        met=r is not None and r >= share))  # fmt: skip
    for processes in plan.server_counts:
        if processes == 2:
            continue
        ours, raw = _pairs(sandbox, topic.name, processes, 100, plan, raw_env)
        label = f"HTTP publish, batches of 100, {processes} server process(es) (scale-out)"
        rows.append(Row(key=f"http_publish_batch_{processes}p", path=label,
                        unit="ev/s", target="scaling vs 2 processes", figure=ours, limit=raw,
                        limit_label="raw ASGI, same server", ratio=ratio(ours, raw)))  # fmt: skip
    rows.append(_latency_row(sandbox, plan))
    return rows


def _pairs(sandbox: Sandbox, topic: str, processes: int, size: int, plan: Any, raw_env: dict) -> tuple[Figure, Figure]:
    ours, raw = [], []
    runs = 1 if plan.quick else max(2, plan.runs // 2)
    for _ in range(runs):
        ours.append(throughput(sandbox, _project_app(), topic, processes, size, plan.http_seconds))
        raw.append(throughput(sandbox, RAW_APP, topic, processes, size, plan.http_seconds, **raw_env))
    return Figure.of(ours), Figure.of(raw)


def _latency_row(sandbox: Sandbox, plan: Any) -> Row:
    """POSTs of ``PER_REQUEST`` events at a steady rate, each carrying its send time, to a recording handler."""
    topic, worker = start_recorder(sandbox, "latency-http")
    sandbox.producer_for(topic)
    path = URL.format(topic.name)
    rate = plan.latency_rate

    def make(i: int) -> bytes:
        now = time.time()
        events = [{"type": "tick", "data": {"t": now, "i": i}}] * PER_REQUEST
        return loadgen.request(path, sandbox.token, orjson.dumps({"events": events}))

    try:
        with Servers(sandbox, _project_app(), 2) as servers:
            servers.wait_ready(make)
            # Warm every server process (first requests load code, connections and
            # caches), then measure: a cold start is not a steady-state latency.
            warm = loadgen.drive(servers.port, make, seconds=1.0, rate=rate / PER_REQUEST, connections=32)
            latencies(key("latency"), warm.ok * PER_REQUEST, timeout=10)  # drained, then forgotten
            load = loadgen.drive(
                servers.port, make, seconds=plan.latency_seconds, rate=rate / PER_REQUEST, connections=32
            )
            flush = loadgen.request(path, sandbox.token, orjson.dumps({"type": "flush", "data": {"flush": True}}))
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
