"""EventFlow beside the brokers users would pick instead: RabbitMQ, NATS JetStream and Celery.

Every row measures EventFlow and each reachable peer in the same run, on the
same 231-byte event, interleaved (EventFlow, then each peer, per round) so a
slow phase of the machine hits all alike. A peer whose server does not answer
or whose client is not installed is left out of the comparison with its
reason in the row's notes. The ratio is EventFlow ÷ the best peer (for a
latency, the best peer's p99 ÷ EventFlow's: how many times lower ours is).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from eventflow.connection import get_redis
from eventflow.publishing import publish

from . import peer_clients as clients
from .delivery import eventflow_rate
from .latency import percentile, python_latency
from .publish import eventflow_batch, eventflow_single, sample_events, stored_payloads
from .sandbox import Sandbox, wait_until
from .table import Figure, Row

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
TARGET = "≥ 3× the best peer"

ROWS = [
    ("peers_batch", "batch publish, 100 per call — EventFlow vs peers", "ev/s", TARGET),
    ("peers_single", "publish one at a time — EventFlow vs peers", "ev/s", TARGET),
    ("peers_drain", "drain, one consumer process, no-op — EventFlow vs peers", "ev/s", TARGET),
    ("peers_p99_1k", "publish → handler p99 at 1,000 ev/s — EventFlow vs peers", "ms", TARGET),
    ("peers_p99_5k", "publish → handler p99 at 5,000 ev/s — EventFlow vs peers", "ms", TARGET),
]


class Peer:
    """One peer broker: how to publish, drain and time it, on a queue or stream name."""

    def __init__(self, info: clients.PeerInfo, key: str, url: str, module: str) -> None:
        self.info, self.key, self.url, self.module = info, key, url, module

    def unavailable(self) -> str | None:
        missing = clients.missing_client(self.module)
        if missing:
            return missing
        try:
            asyncio.run(self.reset("eventflow-bench-probe"))
            asyncio.run(self.drop("eventflow-bench-probe"))
        except Exception as exc:  # noqa: BLE001 - any failure to reach the server is the reason
            return f"{self.info.name} at {self.url} did not answer ({type(exc).__name__})"
        return None

    async def reset(self, name: str) -> None:
        if self.key == "amqp":
            await clients.amqp_purge(self.url, name)
        else:
            await clients.nats_stream(self.url, name)

    async def drop(self, name: str) -> None:
        if self.key == "amqp":
            await clients.amqp_purge(self.url, name)
        else:
            await clients.nats_drop(self.url, name)

    def publish_rate(self, name: str, bodies: list[bytes], batch: int) -> float:
        asyncio.run(self.reset(name))
        try:
            return asyncio.run(clients.publish_rate(self.key, self.url, name, bodies, batch))
        finally:
            asyncio.run(self.drop(name))

    def drain_rate(self, sandbox: Sandbox, name: str, bodies: list[bytes]) -> float:
        asyncio.run(self.reset(name))
        asyncio.run(clients.publish_rate(self.key, self.url, name, bodies, clients.PREFETCH))
        try:
            result = self._consume(sandbox, name, len(bodies), "drain", lambda: None)
            return (len(bodies) - 1) / (result["last"] - result["first"])
        finally:
            asyncio.run(self.drop(name))

    def p99_ms(self, sandbox: Sandbox, name: str, rate: float, seconds: float) -> float:
        asyncio.run(self.reset(name))
        total = int(rate * seconds)
        try:
            send = lambda: asyncio.run(clients.paced(self.key, self.url, name, rate, total))  # noqa: E731
            result = self._consume(sandbox, name, total, "latency", send)
            return percentile(sorted(result["ages"]), 99) * 1000
        finally:
            asyncio.run(self.drop(name))

    def _consume(self, sandbox: Sandbox, name: str, count: int, mode: str, publish_now: Callable[[], None]) -> dict:
        args = [sys.executable, "-m", "dashboard.bench.peer_clients", self.key, self.url, name, str(count), mode]
        proc = subprocess.Popen(args, env=sandbox.env(), cwd=sandbox_root(), stdout=subprocess.PIPE, text=True)
        try:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {self.info.name} consumer did not start")
            publish_now()
            line = proc.stdout.readline()
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        if not line:
            raise RuntimeError(f"the {self.info.name} consumer ended without a result")
        return json.loads(line)


class DramatiqPeer:
    """Dramatiq on the same Redis: one publish at a time (it has no batch API) and a one-process drain."""

    name = "Dramatiq"
    settings = "Redis broker, one worker process with 1 thread, no retries, no results"

    def unavailable(self) -> str | None:
        return clients.missing_client("dramatiq")

    def _env(self, sandbox: Sandbox) -> dict[str, str]:
        return {
            "DRAMATIQ_REDIS_URL": sandbox.redis_url,
            "EVENTFLOW_BENCH_QUEUE": f"{sandbox.prefix}dramatiq",
            "EVENTFLOW_BENCH_KEY": f"{sandbox.prefix}dramatiq-bench",
        }

    def _actor(self, sandbox: Sandbox):
        os.environ.update(self._env(sandbox))
        from . import dramatiq_app

        return dramatiq_app.noop

    def single_rate(self, sandbox: Sandbox, count: int) -> float:
        actor = self._actor(sandbox)
        start = time.perf_counter()
        for _ in range(count):
            actor.send()
        rate = count / (time.perf_counter() - start)
        actor.broker.flush_all()
        return rate

    def drain_rate(self, sandbox: Sandbox, count: int) -> float:
        actor = self._actor(sandbox)
        actor.send("first")
        for _ in range(count - 2):
            actor.send()
        actor.send("last")
        args = [sys.executable, "-m", "dramatiq", "dashboard.bench.dramatiq_app", "--processes", "1", "--threads", "1"]
        proc = sandbox.spawn(args, **self._env(sandbox))
        mark = f"{sandbox.prefix}dramatiq-bench"
        client = get_redis()
        try:
            if not wait_until(lambda: client.exists(f"{mark}:last"), timeout=180, interval=0.01):
                raise RuntimeError("the Dramatiq worker did not finish within 180 s")
            first, last = float(client.get(f"{mark}:first")), float(client.get(f"{mark}:last"))
        finally:
            sandbox.stop(proc)
            client.unlink(f"{mark}:first", f"{mark}:last")
            actor.broker.flush_all()
        return (count - 1) / (last - first)


def sandbox_root() -> str:
    from .sandbox import ROOT

    return str(ROOT)


def peers() -> list[Peer]:
    return [Peer(clients.AMQP, "amqp", AMQP_URL, "aio_pika"), Peer(clients.NATS, "nats", NATS_URL, "nats")]


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    reachable: list[Peer] = []
    absent: dict[str, str] = {}
    for peer in peers():
        reason = peer.unavailable()
        if reason:
            absent[peer.info.name] = reason
        else:
            reachable.append(peer)
    runs = 1 if plan.quick else 3
    counts = {"batch": 2_000, "single": 300, "drain": 3_000, "dramatiq": 300} if plan.quick else {
        "batch": 20_000, "single": 3_000, "drain": 50_000, "dramatiq": 5_000}  # fmt: skip
    topic = sandbox.topic("peers").name
    bodies = {kind: stored_payloads(sample_events(counts[kind]), topic) for kind in ("batch", "single", "drain")}
    figures: dict[str, dict[str, list[float]]] = {row[0]: {} for row in ROWS}

    def note(row: str, who: str, value: float) -> None:
        figures[row].setdefault(who, []).append(value)

    rates = (1_000.0,) if plan.quick else (1_000.0, 5_000.0)
    seconds = 0.5 if plan.quick else 3.0
    for n in range(runs):
        note("peers_batch", "EventFlow", eventflow_batch(topic, counts["batch"]))
        note("peers_single", "EventFlow", eventflow_single(topic, counts["single"]))
        note("peers_drain", "EventFlow", eventflow_rate(sandbox, counts["drain"], 1, f"peers-drain{n}"))
        for rate in rates:
            values, _ = python_latency(sandbox, rate, seconds, run=int(rate) + n)
            note(_latency_key(rate), "EventFlow", percentile(values, 99) * 1000)
        for peer in reachable:
            name = f"{sandbox.prefix.replace(':', '-')}{peer.key}{n}"
            note("peers_batch", peer.info.name, peer.publish_rate(name, bodies["batch"], clients.BATCH))
            note("peers_single", peer.info.name, peer.publish_rate(name, bodies["single"], 1))
            note("peers_drain", peer.info.name, peer.drain_rate(sandbox, name, bodies["drain"]))
            for rate in rates:
                note(_latency_key(rate), peer.info.name, peer.p99_ms(sandbox, name, rate, seconds))
    dramatiq = DramatiqPeer()
    reason = dramatiq.unavailable()
    if reason:
        absent[dramatiq.name] = reason
    else:
        for _ in range(runs):
            note("peers_single", dramatiq.name, dramatiq.single_rate(sandbox, counts["single"]))
            note("peers_drain", dramatiq.name, dramatiq.drain_rate(sandbox, counts["dramatiq"]))
    celery = sandbox.context.get("celery_drain")
    if celery is not None:
        figures["peers_drain"]["Celery 5"] = [celery.median]
    publish(topic, {"done": True}, type="bench.done")  # keeps the topic's stream for the sandbox to remove
    return [
        _row(key, path, unit, figures[key], absent) if figures[key]
        else Row(key=key, path=path, unit=unit, target=TARGET, not_measured="the quick run measures 1,000 ev/s only")
        for key, path, unit, _ in ROWS
    ]  # fmt: skip


def _latency_key(rate: float) -> str:
    return "peers_p99_1k" if rate == 1_000.0 else "peers_p99_5k"


def _row(key: str, path: str, unit: str, samples: dict[str, list[float]], absent: dict[str, str]) -> Row:
    """EventFlow's figure beside the best peer's, every peer's figure (or absence) in the note."""
    ours = Figure.of(samples.pop("EventFlow"))
    theirs = {who: Figure.of(values) for who, values in samples.items()}
    lower_is_better = unit == "ms"
    best_name, best = _best(theirs, lower_is_better)
    ratio = None
    if best is not None and best.median and ours.median:
        ratio = best.median / ours.median if lower_is_better else ours.median / best.median
    parts = [f"{who} {_short(f.median, unit)}" for who, f in theirs.items()]
    parts += [f"{who}: {reason}" for who, reason in absent.items()]
    settings = "; ".join(f"{p.info.name} ({p.info.client}): {p.info.settings}" for p in peers())
    settings += f"; Dramatiq: {DramatiqPeer.settings}"
    return Row(
        key=key,
        path=path,
        unit=unit,
        target=TARGET,
        figure=ours,
        limit=best,
        limit_label=f"best peer: {best_name}" if best_name else "",
        ratio=ratio,
        met=None if ratio is None else ratio >= 3.0,
        note=" · ".join(parts) + (f". Settings: {settings}" if key == "peers_batch" else ""),
        extra={"peers": {who: f.median for who, f in theirs.items()}, "absent": absent},
    )


def _best(theirs: dict[str, Figure], lower_is_better: bool) -> tuple[str, Figure | None]:
    if not theirs:
        return "", None
    pick = min if lower_is_better else max
    name = pick(theirs, key=lambda who: theirs[who].median)
    return name, theirs[name]


def _short(value: float, unit: str) -> str:
    return f"{value:.2f} ms" if unit == "ms" else f"{value:,.0f} {unit}"
