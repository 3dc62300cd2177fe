"""Memory under load: the web and worker processes' RSS over a long soak.

The web process (daphne, the project's ASGI app) serves HTTP publishes at
5,000 events/s (requests of 10 events) and holds open dashboard sockets (the
overview and the topic's live tail) while the monitor pushes to them; the
worker delivers every event to a no-op handler. Both are sampled throughout;
growth compares the median RSS of the first and the last tenth of the
samples, after a warm-up.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import orjson

from ..live_pages import PAGES
from . import loadgen, wsclient
from .procstat import rss
from .sandbox import Sandbox
from .stack import LiveStack
from .table import Figure, Row

ROWS = [
    ("memory_web", "memory, web process under load", "%", "grows < 10 % over 10 min"),
    ("memory_worker", "memory, worker process under load", "%", "grows < 10 % over 10 min"),
]
RATE = 5_000.0
PER_REQUEST = 10
OVERVIEW_SOCKETS = 10
TOPIC_SOCKETS = 2
TARGET_SECONDS = 600.0


def measure(stack: LiveStack, sandbox: Sandbox, plan: Any) -> list[Row]:
    if sandbox.token:
        sandbox.producer_for(stack.topic)
    else:
        sandbox.producer(stack.topic)
    assert stack.worker is not None
    pids = {"web": stack.web_pid, "worker": stack.worker.pid}
    samples, load = _soak(stack, sandbox.token, pids, plan.soak_seconds)
    bad = {s: n for s, n in load.statuses.items() if not 200 <= s < 300}
    if bad:
        raise RuntimeError(f"the web process answered {bad} during the soak")
    load_note = f"{load.rate * PER_REQUEST:,.0f} ev/s published over HTTP in requests of {PER_REQUEST}"
    return [_row(i, samples[name], plan.soak_seconds, load_note) for i, name in enumerate(("web", "worker"))]


def _soak(
    stack: LiveStack, token: str, pids: dict[str, int], seconds: float
) -> tuple[dict[str, list[int]], loadgen.Load]:
    """Load the stack for ``seconds``; sample each process's RSS after a warm-up."""
    path = f"/api/v1/topics/{stack.topic.name}/events"

    def make(i: int) -> bytes:
        events = [{"type": "tick", "data": {"t": time.time(), "i": i}}] * PER_REQUEST
        return loadgen.request(path, token, orjson.dumps({"events": events}))

    result: list[loadgen.Load] = []
    publisher = threading.Thread(
        target=lambda: result.append(
            loadgen.drive(stack.port, make, seconds=seconds, rate=RATE / PER_REQUEST, connections=16)
        )
    )
    watchers = threading.Thread(target=asyncio.run, args=(_hold_sockets(stack, stack.socket_headers(), seconds),))
    publisher.start()
    watchers.start()
    samples = _sample(pids, seconds)
    publisher.join()
    watchers.join()
    return samples, result[0]


def _sample(pids: dict[str, int], seconds: float) -> dict[str, list[int]]:
    start = time.monotonic()
    warm = start + min(30.0, seconds / 4)
    interval = min(5.0, seconds / 20)
    samples: dict[str, list[int]] = {name: [] for name in pids}
    while time.monotonic() < start + seconds:
        time.sleep(interval)
        if time.monotonic() >= warm:
            for name, pid in pids.items():
                samples[name].append(rss(pid))
    return samples


async def _hold_sockets(stack: LiveStack, headers: dict[str, str], seconds: float) -> None:
    """Dashboard tabs open through the soak: the overview and the topic's live tail."""
    overview, tail = PAGES["overview"].socket_path(), PAGES["topic"].socket_path(stack.topic.name)
    paths = [overview] * OVERVIEW_SOCKETS + [tail] * TOPIC_SOCKETS
    sockets = await asyncio.gather(*(wsclient.connect(stack.port, p, headers) for p in paths))
    try:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(wsclient.listen(s, deadline) for s in sockets))
    finally:
        for s in sockets:
            wsclient.close(s)


def _row(index: int, samples: list[int], seconds: float, load_note: str) -> Row:
    key, path, unit, target = ROWS[index]
    if len(samples) < 2 or not all(samples):
        return Row(key=key, path=path, unit=unit, target=target, not_measured="too short a soak to sample")
    tenth = max(1, len(samples) // 10)
    first, last = statistics.median(samples[:tenth]), statistics.median(samples[-tenth:])
    growth = 100.0 * (last - first) / first
    full = seconds >= TARGET_SECONDS
    window = f"{seconds / 60:.0f} min soak" if full else f"quick: {seconds:.0f} s soak, no verdict"
    note = (
        f"{window}: {first / 1e6:.0f} → {last / 1e6:.0f} MB RSS (median of the first and last tenth of "
        f"{len(samples)} samples, peak {max(samples) / 1e6:.0f} MB); {load_note}; "
        f"{OVERVIEW_SOCKETS + TOPIC_SOCKETS} dashboard sockets open"
    )
    return Row(key=key, path=path, unit=unit, target=target, figure=Figure.of([growth]),
               met=growth < 10.0 if full else None, note=note,
               extra={"rss_mb": [round(v / 1e6, 1) for v in samples]})  # fmt: skip
