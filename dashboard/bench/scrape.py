"""``GET /metrics`` at 1,000 topics and 1,000 consumers: one scrape's server time.

The flow at scale is the dashboard section's (``dashboard.declare_flow``: each
topic with one consumer, so a lane each), every topic with one published
event so its counters exist. Before each scrape a monitor samples it and
stores its snapshot; the scrape itself goes through the project's ASGI
application in this process (``dashboard.asgi.application``: static files,
the publish router, Django's handler and ``metrics_view``), from the request
to the last body byte, without a socket. The figure is the process's CPU
time over it (its threads included): the server's time on an idle machine,
without the waits for a core on a shared one (the wall time is in the note,
as in ``tests/eventflow/test_metrics_speed.py``).

The limit is the work no exposition can skip: one Redis ``GET`` of the same
snapshot and its JSON decode.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from eventflow import keys, monitor
from eventflow.connection import get_redis
from eventflow.publishing import publish_batch

from .dashboard import declare_flow, flow_size
from .sandbox import Sandbox
from .table import Figure, Row, ratio

ROWS = [("metrics_scrape", "/metrics scrape, 1,000 topics and 1,000 consumers", "ms", "≤ 100 ms")]
TARGET_MS = 100.0
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/metrics",
    "raw_path": b"/metrics",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 40000),  # loopback: on the default allow-list
    "server": ("127.0.0.1", 8000),
}


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    from dashboard.asgi import application

    size = flow_size(plan)
    declare_flow(sandbox, size)
    for n in range(size):
        publish_batch(sandbox.name(f"t{n}"), [{"type": "order.created", "data": {"n": n}}])
    watcher = monitor.Monitor()
    watcher.step()
    body = _scrape(application)[1]  # the first request sets up URL resolving and imports: not counted
    cpu, wall, reads = [], [], []
    for _ in range(max(5, plan.runs)):
        watcher.step()
        started = time.process_time()
        wall.append(_scrape(application)[0])
        cpu.append((time.process_time() - started) * 1000)
        reads.append(_read_snapshot())
    figure, limit, waited = Figure.of(cpu), Figure.of(reads), Figure.of(wall)
    key, _, unit, target = ROWS[0]
    scale = "" if size == 1_000 else f"quick: {size} topics and consumers; "
    return [
        Row(
            key=key,
            path=ROWS[0][1],
            unit=unit,
            target=target,
            figure=figure,
            limit=limit,
            limit_label="GET + JSON decode of the snapshot",
            ratio=ratio(figure, limit),
            met=figure.median <= TARGET_MS,
            note=(
                f"{scale}{_series(body):,} series, {len(body) / 1e6:.1f} MB; CPU time through the project's "
                f"ASGI app, in process; wall median {waited.median:.0f} ms (best {waited.low:.0f})"
            ),
        )
    ]


def _scrape(application: Any) -> tuple[float, bytes]:
    """Wall milliseconds from the request to the response's last body byte, and the body."""
    return asyncio.run(_request(application))


async def _request(application: Any) -> tuple[float, bytes]:
    sent: list[dict] = []
    requested = False

    async def receive() -> dict:
        nonlocal requested
        if requested:  # the client stays connected until the response is done (then this is cancelled)
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    start = time.perf_counter()
    await application(dict(SCOPE), receive, send)
    elapsed = (time.perf_counter() - start) * 1000
    status = sent[0]["status"]
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return elapsed, b"".join(m.get("body", b"") for m in sent[1:])


def _read_snapshot() -> float:
    """CPU milliseconds of the one read no exposition can skip."""
    start = time.process_time()
    orjson.loads(get_redis().get(keys.monitor_snapshot()))
    return (time.process_time() - start) * 1000


def _series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
