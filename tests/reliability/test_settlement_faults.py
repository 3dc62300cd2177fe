"""Issue 9, cases 2 and 4: the database or Redis refuses writes while a consumer dead-letters.

A consumer fails poison events (every attempt) beside healthy ones while
Redis is full (``noeviction`` at ``maxmemory``, on a Redis this test owns) or
the SQLite database is write-locked by another connection (``BEGIN
IMMEDIATE``). Once the fault ends, the ledger must show: no event vanished
(each poison event is exactly one FailedEvent with its real error, each
healthy event was handled), none handled twice, and no poison event tried
more than ``max_attempts`` times. The runner is stepped in-process as its
worker thread steps it (an error ends the step; the next step goes on).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter

import pytest
import redis
from django.db import DatabaseError, connection

from eventflow import monitor, publish_batch
from eventflow.database import drop_broken_connections
from eventflow.models import FailedEvent
from eventflow.worker import ConsumerRunner, Worker
from tests.reliability.conftest import build_flow, use_broker
from tests.reliability.harness import Ledger, Subscriber, effects, new_events, records, sized

RISKY = Subscriber("risky", "flaky", ("orders",))
MAX_ATTEMPTS = 2
FAULT_SECONDS = sized(3, 20)


def publish_mix(poison: int, healthy: int) -> tuple[Ledger, Ledger]:
    """Publish ``poison`` events that always fail and ``healthy`` ones, interleaved."""
    bad, good = Ledger(), Ledger()
    for _ in range(max(poison, healthy) // 10):
        events = new_events(min(10, poison), poison=True, sleep_ms=0)
        publish_batch("orders", events), bad.file("orders", events, "ok")
        events = new_events(min(10, healthy), sleep_ms=0)
        publish_batch("orders", events), good.file("orders", events, "ok")
    return bad, good


def step(runner: ConsumerRunner, errors: Counter) -> bool:
    """One step as the worker thread takes it: an infrastructure error ends the step, not the thread."""
    try:
        return runner.run_once()
    except (redis.RedisError, DatabaseError) as exc:
        errors[type(exc).__name__] += 1
        drop_broken_connections()
        time.sleep(0.05)
        return False


def run_for(runner: ConsumerRunner, seconds: float, errors: Counter) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step(runner, errors)


def settle(runner: ConsumerRunner, poison: Ledger, healthy: Ledger, errors: Counter, timeout: float = 30.0) -> float:
    """Step until every poison event is filed and every healthy one handled; return how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not step(runner, errors) and _settled(poison, healthy):
            break
        time.sleep(0.01)
    return round(time.monotonic() - started, 2)


def _settled(poison: Ledger, healthy: Ledger) -> bool:
    done = {r.event_id for r in effects(RISKY, "")}
    filed = set(FailedEvent.objects.values_list("event_id", flat=True))
    return healthy.ids("ok") <= done and poison.ids("ok") <= filed


def ledger_report(poison: Ledger, healthy: Ledger) -> dict[str, int]:
    """Lost, duplicated and mis-filed events, and the highest attempt count of a poison event."""
    done = Counter(r.event_id for r in effects(RISKY, ""))
    rows = Counter(FailedEvent.objects.values_list("event_id", flat=True))
    tries = Counter(r.event_id for r in records("deliveries") if r.event_id in poison.ids("ok"))
    good, bad = healthy.ids("ok"), poison.ids("ok")
    errors = set(FailedEvent.objects.values_list("error", flat=True))
    return {
        "lost": len(good - set(done)) + len(bad - set(rows)),
        "duplicates": sum(n - 1 for i, n in done.items() if i in good) + sum(n - 1 for n in rows.values()),
        "misfiled": sum(1 for i in rows if i not in bad),
        "max_poison_attempts": max(tries.values(), default=0),
        "wrong_errors": sum(1 for e in errors if not e.startswith("RuntimeError: poison event")),
    }


def show(name: str, figures: dict, **extra) -> None:
    print(f"\n== reliability report: {name} ==")
    for key, value in {**figures, **extra}.items():
        print(f"{key:<22}{value}")


def assert_held(figures: dict) -> None:
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["misfiled"] == 0, figures
    assert figures["max_poison_attempts"] <= MAX_ATTEMPTS, figures
    assert figures["wrong_errors"] == 0, figures


def runner_for(name: str) -> ConsumerRunner:
    worker = Worker()
    worker.refresh()
    return worker.runners[name]


def test_redis_full_with_noeviction_makes_no_failing_event_vanish(scenario, settings, own_redis):
    server = own_redis(appendonly=False)
    use_broker(settings, server.url)
    build_flow([RISKY], max_attempts=MAX_ATTEMPTS, retry_initial=0.05, retry_factor=1.0, retry_max=0.05)
    poison, healthy = publish_mix(sized(60, 600), sized(60, 600))
    broker = redis.Redis.from_url(server.url)
    runner, errors = runner_for("risky"), Counter()
    step(runner, errors)  # running when Redis fills up
    used = int(broker.info("memory")["used_memory"])
    # Full: writes that take memory (HSET, ZADD, HINCRBY) are refused; XREADGROUP and XACK are not.
    broker.config_set("maxmemory-policy", "noeviction")
    broker.config_set("maxmemory", max(1, used // 2))

    run_for(runner, FAULT_SECONDS, errors)
    broker.config_set("maxmemory", 0)
    took = settle(runner, poison, healthy, errors)

    figures = ledger_report(poison, healthy)
    infra = monitor.Monitor().step(store=False)["consumers"][0]["infra_errors"]
    show("redis full (noeviction)", figures, refused_steps=sum(errors.values()), infra_errors=infra, settle_s=took)
    assert errors, "the fault did not bite: Redis took every write"
    assert_held(figures)
    assert infra >= 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="locks an SQLite file; this run uses another database")
def test_sqlite_write_locked_while_dead_lettering_loses_and_doubles_nothing(scenario, monkeypatch, caplog):
    caplog.set_level(logging.ERROR, "eventflow")
    options = {"retry_initial": 0.05, "retry_factor": 1.0, "retry_max": 0.05, "ack_timeout": 1.0}
    build_flow([RISKY], max_attempts=MAX_ATTEMPTS, **options)
    poison, healthy = publish_mix(sized(40, 400), sized(60, 600))
    # Writers give up after 0.2 s instead of the deployment's 20 s, so the lock bites in a short test.
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    connection.close()
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock
    runner, errors = runner_for("risky"), Counter()
    try:
        run_for(runner, FAULT_SECONDS, errors)
        parked = runner.infra_errors
    finally:
        holder.execute("COMMIT")
        holder.close()
    took = settle(runner, poison, healthy, errors)
    connection.close()

    figures = ledger_report(poison, healthy)
    show("sqlite write-locked", figures, infra_errors=runner.infra_errors, lock_s=FAULT_SECONDS, settle_s=took)
    assert parked >= 1, "the lock did not bite: the dead letters were written meanwhile"
    assert_held(figures)
