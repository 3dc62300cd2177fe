"""HTTP publishing through the ASGI server ``serve`` runs, beside a bare ASGI endpoint.

EventFlow runs as ``serve`` ships it (``dashboard.webserver``: uvicorn, N
processes); the bare endpoint (``limits.raw_app``: parse, XADD, answer) runs
on every fast server installed (uvicorn, granian) with the same process
count, and the limit is the fastest of them in the same run. Both are loaded
by ``loadgen`` over loopback with keep-alive.
"""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson
from django.conf import settings

from dashboard import webserver
from eventflow import keys
from eventflow.connection import get_redis
from . import loadgen
from .handlers import key
from .latency import latencies, percentile, start_recorder
from .publish import sample_events
from .sandbox import Sandbox, wait_until
from .table import Figure, Row, ratio

ROWS = [
    ("http_publish_batch", "HTTP publish, batches of 100, 2 server processes", "ev/s", "≥ 70 % of the bare ASGI limit"),
    (
        "http_publish_single",
        "HTTP publish, one event per request, 2 processes",
        "req/s",
        "≥ 60 % of the bare ASGI limit",
    ),
    ("latency_http", "publish → handler p99 at 5,000 ev/s, HTTP", "ms", "≤ 5 ms"),
]
RAW_APP = "dashboard.bench.limits:raw_app"
PER_REQUEST = 10  # events per request in the latency run (5,000 ev/s as 500 req/s)
URL = "/api/v1/topics/{}/events"
FAST_SERVERS = ("uvicorn", "granian")  # the bare endpoint's candidates, where installed


class Servers:
    """``app`` on ``server`` with ``count`` processes, on a free loopback port.

    uvicorn and granian manage their own processes on one socket; daphne has no
    process manager, so ``count`` daphne processes share one inherited socket.
    """

    def __init__(self, sandbox: Sandbox, app: str, count: int, server: str = webserver.DEFAULT, **env: str) -> None:
        self.sandbox = sandbox
        self.app = app
        self.server = server
        self.processes = count
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        if server == "daphne":
            self.listener.listen(1024)
            self.listener.set_inheritable(True)
            fd = self.listener.fileno()
            args = webserver.command(app, server=server, fd=fd)
            self.procs = [sandbox.spawn(args, pass_fds=(fd,), **env) for _ in range(count)]
        else:
            self.listener.close()  # the port was free a moment ago; the server binds it itself
            self.procs = [sandbox.spawn(webserver.command(app, port=self.port, processes=count, server=server), **env)]

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


def fast_servers() -> list[str]:
    """The fast ASGI servers installed here (granian is a benchmark-only requirement)."""
    return [name for name in FAST_SERVERS if importlib.util.find_spec(name) is not None]


def project_app() -> str:
    module, _, name = settings.ASGI_APPLICATION.rpartition(".")
    return f"{module}:{name}"


def _limit_label(raw: Servers, processes: int) -> str:
    return f"bare ASGI + orjson + XADD, fastest installed: {raw.server}, {processes} processes"


def _bodies(size: int) -> list[bytes]:
    events = sample_events(size)
    if size == 1:
        return [orjson.dumps(events[0])]
    return [orjson.dumps({"events": events})]


def throughput(servers: Servers, token: str, topic: str, size: int, seconds: float, stream: str) -> float:
    """Events/s that ``servers`` accept in batches of ``size``; ``stream`` is emptied afterwards."""
    payload = loadgen.request(URL.format(topic), token, _bodies(size)[0])
    load = loadgen.drive(servers.port, lambda i: payload, seconds=seconds, connections=16 * servers.processes)
    bad = {s: n for s, n in load.statuses.items() if not 200 <= s < 300}
    if bad:
        raise RuntimeError(f"{servers.app} answered {bad}")
    get_redis().unlink(stream)
    return load.rate * size


@contextmanager
def _served(sandbox: Sandbox, topic: str, processes: int, raw_stream: str) -> Iterator[tuple[Servers, list[Servers]]]:
    """EventFlow as serve runs it and the bare endpoint on each fast server, ``processes`` each, ready."""
    payload = loadgen.request(URL.format(topic), sandbox.token, _bodies(1)[0])
    with ExitStack() as stack:
        ours = stack.enter_context(Servers(sandbox, project_app(), processes))
        raws = [
            stack.enter_context(Servers(sandbox, RAW_APP, processes, server, EVENTFLOW_BENCH_STREAM=raw_stream))
            for server in fast_servers()
        ]
        for servers in (ours, *raws):
            servers.wait_ready(lambda i: payload)
        yield ours, raws


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    """Servers start once per process count; runs alternate EventFlow and the bare ones on warm servers."""
    topic = sandbox.topic("http")
    sandbox.producer(topic)
    raw_stream = f"{sandbox.prefix}{{raw-http}}:stream"
    rows = []
    with _served(sandbox, topic.name, 2, raw_stream) as (ours, raws):
        for key_, size, share in (("http_publish_batch", 100, 0.70), ("http_publish_single", 1, 0.60)):
            figure, limit, fastest = _pairs(sandbox, topic.name, ours, raws, size, plan, raw_stream)
            unit = "ev/s" if size > 1 else "req/s"
            path = dict((k, p) for k, p, _, _ in ROWS)[key_] + f", EventFlow on {ours.server}"
            r = ratio(figure, limit)
            rows.append(Row(key=key_, path=path, unit=unit, target=f"≥ {share:.0%} of the bare ASGI limit",
                            figure=figure, limit=limit, limit_label=_limit_label(fastest, 2),
                            ratio=r, met=r is not None and r >= share))  # fmt: skip
        latency = _latency_row(sandbox, plan, ours)
    for processes in plan.server_counts:
        if processes == 2:
            continue
        with _served(sandbox, topic.name, processes, raw_stream) as (ours, raws):
            figure, limit, fastest = _pairs(sandbox, topic.name, ours, raws, 100, plan, raw_stream)
        label = f"HTTP publish, batches of 100, {processes} server process(es), EventFlow on {ours.server} (scale-out)"
        rows.append(Row(key=f"http_publish_batch_{processes}p", path=label,
                        unit="ev/s", target="scaling vs 2 processes", figure=figure, limit=limit,
                        limit_label=_limit_label(fastest, processes), ratio=ratio(figure, limit)))  # fmt: skip
    return [*rows, latency]


def _pairs(
    sandbox: Sandbox, topic: str, ours: Servers, raws: list[Servers], size: int, plan: Any, raw_stream: str
) -> tuple[Figure, Figure, Servers]:
    """EventFlow's figure, and the fastest bare server's (with that server), alternating runs."""
    mine: list[float] = []
    limits: dict[str, list[float]] = {raw.server: [] for raw in raws}
    runs = 1 if plan.quick else max(2, plan.runs // 2)
    for _ in range(runs):
        mine.append(throughput(ours, sandbox.token, topic, size, plan.http_seconds, keys.stream(topic)))
        for raw in raws:
            limits[raw.server].append(throughput(raw, sandbox.token, topic, size, plan.http_seconds, raw_stream))
    fastest = max(raws, key=lambda raw: Figure.of(limits[raw.server]).median)
    return Figure.of(mine), Figure.of(limits[fastest.server]), fastest


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
               limit_label="XADD → blocking XREADGROUP", ratio=ratio(figure, limit), met=figure.median <= 5.0,
               note=f"{load.rate * PER_REQUEST:,.0f} ev/s achieved in requests of {PER_REQUEST} events, "
               f"2 {servers.server} processes")  # fmt: skip
