"""The monitor: what it reads from Redis, the rates, health and history it derives."""

from __future__ import annotations

import time

import orjson

from eventflow import history, inspection, keys
from eventflow import monitor as monitor_module
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.publishing import publish
from eventflow.worker import Worker
from tests.helpers import consumer_state, drain, make_consumer, subscribe, take


def beat(*consumers: str, worker_id: str = "w1") -> None:
    """Write a worker heartbeat the way eventflow.worker does."""
    now = time.time()
    document = {"id": worker_id, "pid": 1, "host": "test", "started_at": now, "beat_at": now}
    document["consumers"] = {c: {"in_flight": 0, "handled": 0, "paused": False} for c in consumers}
    get_redis().set(keys.worker(worker_id), orjson.dumps(document), ex=10)
    get_redis().zadd(keys.workers(), {worker_id: now})


def test_it_counts_a_consumers_lag_before_any_worker_reads(monitor, orders, billing):
    subscribe(billing)
    for n in range(3):
        publish("orders", {"n": n}, type="order.created")
    state = consumer_state(monitor.step(), "billing")
    assert (state["lag"], state["pending"], state["backlog"]) == (3, 0, 3)


def test_a_backlog_without_a_live_worker_is_stopped(monitor, orders, billing):
    subscribe(billing)
    publish("orders", {"n": 1}, type="order.created")
    state = consumer_state(monitor.step(), "billing")
    assert state["status"] == "STOPPED"
    assert state["reason"] == "no live worker; backlog 1"


def test_it_reports_pending_events_and_how_long_the_oldest_waits(monitor, orders, billing):
    subscribe(billing)
    beat("billing")
    publish("orders", {"n": 1}, type="order.created")
    take("orders", "billing")
    time.sleep(0.05)
    state = consumer_state(monitor.step(), "billing")
    assert (state["lag"], state["pending"], state["workers"]) == (0, 1, 1)
    assert state["oldest_pending"] >= 0.05


def test_a_hanging_handler_turns_stalled_after_the_stall_threshold(monitor, orders):
    hung = make_consumer("hung", "tests.handlers.billing", orders, stall_threshold=1.0)
    subscribe(hung)
    beat("hung")
    publish("orders", {"n": 1}, type="order.created")
    take("orders", "hung")
    assert consumer_state(monitor.step(), "hung")["status"] == "OK"
    time.sleep(1.1)
    state = consumer_state(monitor.step(), "hung")
    assert state["status"] == "STALLED"
    assert state["reason"].startswith("no ack for 1 s")


def test_rates_come_from_successive_readings(monitor, orders, billing, shop):
    subscribe(billing)
    monitor.step()
    for n in range(20):
        publish("orders", {"n": n}, type="order.created", source="shop")
    snapshot = monitor.step()
    topic = next(t for t in snapshot["topics"] if t["name"] == "orders")
    assert topic["rate"] > 0
    assert snapshot["edges"]["produce"]["shop|orders"] == topic["rate"]
    assert topic["published"] == 20


def test_it_counts_replayable_failed_events_per_consumer(monitor, orders, billing):
    for n, status in enumerate(["failed", "failed_again", "resolved"]):
        FailedEvent.objects.create(
            consumer=billing, topic=orders, event_id=f"e{n}", event_type="t", event={}, error="x", status=status
        )
    assert consumer_state(monitor.step(), "billing")["failed"] == 2


def test_history_is_kept_per_second_in_redis_and_written_once_per_second(monitor, orders, billing):
    subscribe(billing)
    publish("orders", {"n": 1}, type="order.created")
    monitor.step()
    monitor_module.Monitor(flow_refresh=0).step()  # a second monitor in the same second
    readings = history.history("orders", "s")
    assert len(readings) == 1
    assert readings[0][1]["p"] == 1
    assert readings[0][1]["b:billing"] == 1
    assert len(history.history("orders", "m")) == 1


def test_history_stays_bounded(settings, monitor, orders):
    settings.EVENTFLOW_MONITOR_HISTORY_SECONDS = 5
    client = get_redis()
    for second in range(20):
        client.xadd(keys.rate_history("orders", "s"), {"p": second}, id=f"{(1000 + second) * 1000}-0")
    monitor.step()
    assert client.xlen(keys.rate_history("orders", "s")) <= 6


def test_rates_are_derived_from_running_totals():
    readings = [(10.0, {"p": 100}), (11.0, {"p": 130}), (13.0, {"p": 150})]
    assert history.rates(readings, "p") == [(11.0, 30.0), (13.0, 10.0)]


def test_only_one_monitor_leads_at_a_time(monitor, key_prefix):
    other = monitor_module.Monitor()
    client = get_redis()
    assert monitor.is_leader(client)
    assert monitor.is_leader(client)
    assert not other.is_leader(client)


def test_web_processes_read_the_stored_snapshot(monitor, orders, billing):
    monitor.step()
    assert monitor_module.load_snapshot()["live"] is False  # first reading: no rates yet
    monitor.step()
    assert monitor_module.load_snapshot()["live"] is True


def test_without_a_monitor_the_snapshot_is_a_one_off_sample(orders, billing):
    snapshot = monitor_module.load_snapshot()
    assert snapshot["live"] is False
    assert consumer_state(snapshot, "billing")["status"] == "OK"


def test_the_delivery_matrix_says_where_an_event_stands_with_each_consumer(orders, billing, shipping):
    subscribe(billing, shipping)
    event_id = publish("orders", {"n": 1}, type="order.created")
    sid = get_redis().xrange(keys.stream("orders"))[0][0].decode()
    client = get_redis()

    def states() -> dict:
        rows = inspection.delivery_matrix(client, "orders", sid, event_id, ["billing", "shipping"])
        return {row["consumer"]: row["state"] for row in rows}

    assert states() == {"billing": "not yet delivered", "shipping": "not yet delivered"}
    take("orders", "billing")
    take("orders", "shipping")
    client.xack(keys.stream("orders"), "shipping", sid)
    assert states() == {"billing": "pending", "shipping": "acked"}
    FailedEvent.objects.create(
        consumer=billing, topic=orders, event_id=event_id, event_type="order.created", event={}, error="x"
    )
    assert states()["billing"] == "failed"


def test_the_tail_reads_newest_first_from_a_cursor(orders):
    for n in range(5):
        publish("orders", {"n": n}, type="order.created")
    client = get_redis()
    events, cursor = inspection.read_tail(client, "orders", None, 2)
    assert [e["data"]["n"] for _, e in events] == [4, 3]
    publish("orders", {"n": 5}, type="order.created")
    events, _ = inspection.read_tail(client, "orders", cursor, 10)
    assert [e["data"]["n"] for _, e in events] == [5]


def test_a_consumer_that_dead_letters_a_few_events_is_a_warning_with_the_figures(monitor, orders):
    flaky = make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    subscribe(flaky)
    beat("flaky")
    monitor.step()
    for n in range(25):
        publish("orders", {"n": 2 * n + (1 if n < 2 else 0)}, type="order.created")  # 2 of 25 fail: 8 %
    drain(Worker(["flaky"]))
    state = consumer_state(monitor.step(), "flaky")
    assert state["status"] == "WARNING"
    assert state["reason"].startswith("8% of 25 attempts failed in ")
    assert state["reason"].endswith(", 2 dead-lettered")


def test_events_the_type_filter_skips_are_counted_apart_from_handled_ones(monitor, orders):
    refunds = make_consumer("refunds", "tests.handlers.billing", orders, event_types="refund.*")
    subscribe(refunds)
    beat("refunds")
    for n in range(3):
        publish("orders", {"n": n}, type="order.created")
    publish("orders", {"n": 9}, type="refund.created")
    drain(Worker(["refunds"]))
    state = consumer_state(monitor.step(), "refunds")
    assert state["skipped"] == 3
    assert state["acked"] == 4  # acknowledged: handled or skipped


def test_headline_rates_are_averaged_over_the_last_five_seconds():
    from collections import deque

    memory: deque = deque()

    def at(second: float, published: int) -> dict:
        reading = monitor_module.Reading(second, {"orders": {"published": published}}, {}, {}, [])
        totals: dict = {}
        monitor_module.smooth_totals(totals, reading, memory)
        return totals

    at(100.0, 0)
    at(101.0, 60)  # a burst of 60 in one second...
    totals = at(102.0, 60)  # ...then nothing
    assert (totals["published_rate_smoothed"], totals["smoothed_over"]) == (30.0, 2.0)
    for second in range(103, 110):
        totals = at(float(second), 60)
    assert totals["smoothed_over"] <= 6.0
    assert totals["published_rate_smoothed"] == 0.0
