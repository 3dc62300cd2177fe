"""Issue 9, case 1 (worker and monitor side): PostgreSQL stopped under load, then started again.

The scenario starts a PostgreSQL cluster of its own on a free port, migrates a
database in it and points real processes at it — a worker (``runconsumers``),
the monitor and a web server — while the broker Redis is the session's. A
producer publishes healthy and poison events throughout; the cluster is
stopped as a crash would (``pg_ctl -m immediate``) for a few seconds (longer
with ``EVENTFLOW_LONG=1``), then started again.

Held when: health says ``database: down`` during the outage and ``ok`` after;
the monitor keeps sampling Redis meanwhile and says the database is down;
after the restart every process recovers by itself within ``RECOVER_WITHIN``
seconds; no healthy event is lost or handled twice; each poison event is
tried at most ``max_attempts`` times and becomes exactly one FailedEvent
carrying its real error.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import psycopg
import pytest
from django.db import connection

from eventflow import keys, publish_batch
from eventflow.connection import get_redis
from eventflow.models import Topic
from tests.helpers import ROOT
from tests.reliability.harness import Ledger, Subscriber, effects, new_events, records, sized, wait
from tests.reliability.postgres import PostgresCluster

pytestmark = [pytest.mark.processes]

BILLING = Subscriber("billing", "effect", ("orders",))
RISKY = Subscriber("risky", "flaky", ("orders",))
MAX_ATTEMPTS = 2
OUTAGE = sized(6, 30)
RECOVER_WITHIN = 15.0

FLOW = """
from eventflow.models import Consumer, Topic
orders = Topic.objects.create(name="orders")
for name, kind in [("billing", "effect"), ("risky", "flaky")]:
    consumer = Consumer.objects.create(
        name=name, handler=f"tests.reliability.handlers.{kind}__{name}", max_attempts=%d,
        retry_initial=0.2, retry_factor=1.0, retry_max=0.2, ack_timeout=2.0,
    )
    consumer.topics.add(orders)
"""


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    reason = PostgresCluster.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster().init()
    cluster.start()
    yield cluster
    cluster.destroy()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True, timeout=180)


class Producer:
    """Publishes 4 healthy events and 1 poison event every 50 ms, in-process, until stopped."""

    def __init__(self) -> None:
        self.healthy, self.poison = Ledger(), Ledger()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                good, bad = new_events(4, sleep_ms=0), new_events(1, poison=True, sleep_ms=0)
                publish_batch("orders", good + bad)
                self.healthy.file("orders", good, "ok"), self.poison.file("orders", bad, "ok")
                self.stop.wait(0.05)
        finally:
            connection.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def health(url: str) -> str:
    """The database as ``/api/v1/health`` says it ("no answer" if the server did not answer)."""
    try:
        return httpx.get(url + "/api/v1/health", timeout=3).json().get("database", "?")
    except (httpx.HTTPError, ValueError):
        return "no answer"


def snapshot() -> dict:
    raw = get_redis().get(keys.monitor_snapshot())
    return orjson.loads(raw) if raw else {}


def failed_rows(db_url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT event_id, error, attempts FROM eventflow_failedevent").fetchall()


def watch_outage(url: str, seconds: float) -> dict:
    """Poll health and the monitor's snapshot while the database is down."""
    seen, samples, parked = Counter(), set(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen[f"health:{health(url)}"] += 1
        current = snapshot()
        seen[f"monitor:{current.get('database', {}).get('status', 'none')}"] += 1
        samples.add(current.get("at"))
        parked = max([parked] + [c.get("parked_dead_letters", 0) for c in current.get("consumers", [])])
        time.sleep(0.5)
    return {"seen": seen, "monitor_samples": len(samples - {None}), "parked": parked}


def test_postgres_stopped_and_started_recovers_with_nothing_lost_doubled_or_overtried(scenario, fleet, own_postgres):
    db_url = own_postgres.create_database("ef")
    processes = fleet(DATABASE_URL=db_url)
    manage(processes.env, "migrate", "--verbosity", "0")
    manage(processes.env, "shell", "-c", FLOW % MAX_ATTEMPTS)
    Topic.objects.create(name="orders")  # the test process publishes through its own database
    url = processes.web()
    processes.worker(), processes.monitor()
    wait(lambda: snapshot().get("database", {}).get("status") == "ok", 30, "the monitor's first snapshot")
    producer = Producer()
    producer.start()
    time.sleep(2)

    own_postgres.stop()
    outage = watch_outage(url, OUTAGE)
    own_postgres.start()
    restarted = time.monotonic()
    health_back = wait(lambda: health(url) == "ok" and time.monotonic(), RECOVER_WITHIN, "health to say ok") - restarted
    monitor_back = (
        wait(lambda: snapshot().get("database", {}).get("status") == "ok" and time.monotonic(), RECOVER_WITHIN, "")
        - restarted
    )
    time.sleep(1)
    producer.stop.set()
    poison = producer.poison.ids("ok")

    def settled() -> bool:
        filed = {row[0] for row in failed_rows(db_url)}
        done = {r.event_id for r in effects(BILLING, scenario)} & {r.event_id for r in effects(RISKY, scenario)}
        return poison <= filed and producer.healthy.ids("ok") <= done

    wait(settled, RECOVER_WITHIN + OUTAGE, "every poison event filed and every healthy one handled")
    filed_after = time.monotonic() - restarted

    rows = failed_rows(db_url)
    calls = Counter((r.event_id, r.consumer) for r in records("deliveries"))
    healthy = producer.healthy.ids("ok")
    figures = {
        "published": f"{len(healthy)} healthy, {len(poison)} poison",
        "lost": len(healthy - {r.event_id for r in effects(BILLING, scenario)})
        + len(healthy - {r.event_id for r in effects(RISKY, scenario)})
        + len(poison - {row[0] for row in rows}),
        "handled twice": sum(n - 1 for (event_id, _), n in calls.items() if event_id in healthy),
        "failed rows": f"{len(rows)} ({len({row[0] for row in rows})} distinct)",
        "max poison attempts": max((n for (e, c), n in calls.items() if e in poison and c == "risky"), default=0),
        "outage seen": dict(outage["seen"]),
        "monitor samples in outage": outage["monitor_samples"],
        "most parked (monitor)": outage["parked"],
        "health ok after": f"{health_back:.2f} s",
        "monitor ok after": f"{monitor_back:.2f} s",
        "all filed after": f"{filed_after:.2f} s",
    }
    print("\n== reliability report: postgres stopped %d s ==" % OUTAGE)
    for name, value in figures.items():
        print(f"{name:<27}{value}")
    assert outage["seen"]["health:down"] >= 1 and outage["seen"]["health:ok"] == 0, figures
    assert outage["seen"]["monitor:down"] >= 1 and outage["monitor_samples"] >= OUTAGE // 2, figures
    assert outage["parked"] >= 1, figures  # the dead letters waiting for the database are shown, not hidden
    assert figures["lost"] == 0 and figures["handled twice"] == 0, figures
    assert len(rows) == len(poison) and figures["max poison attempts"] <= MAX_ATTEMPTS, figures
    assert all(error.startswith("RuntimeError: poison event") for _, error, _ in rows), figures
    assert filed_after <= RECOVER_WITHIN + 5, figures
