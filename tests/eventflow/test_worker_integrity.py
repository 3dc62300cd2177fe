"""Issue 9 (cases 6, 9) and issue 10 (case 4), in-process against a real Redis.

A handler that raises ``SystemExit`` or ``KeyboardInterrupt`` fails its attempt
like any other; one that does not import says why on the consumer's snapshot;
a handler whose database is down does not spend its attempts; an entry in a
topic's stream that is not an event is filed once and takes nothing with it;
and a restarted monitor keeps the "stalled for" clock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from eventflow import keys, monitor, publish
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer, wait_for


@pytest.mark.parametrize(
    "handler, error",
    [("exits", "SystemExit: handler exit on n=1"), ("interrupts", "KeyboardInterrupt: handler interrupt on n=1")],
)
def test_it_records_a_base_exception_from_a_handler_as_that_attempts_failure(orders, handler, error, caplog):
    make_consumer("fragile", f"tests.handlers.{handler}", orders, max_attempts=1)
    bad = publish("orders", {"n": 1}, type="order.created")
    good = publish("orders", {"n": 2}, type="order.created")

    drain(Worker(), until=lambda: FailedEvent.objects.exists())

    row = FailedEvent.objects.get()
    assert row.event_id == bad and row.attempts == 1
    raised = error.split(":")[0]
    assert row.error == error
    assert "tests/handlers.py" in row.traceback and raised in row.traceback
    assert [e for e, _, _ in handlers.seen(handler)] == [good]
    assert any(raised in r.getMessage() and r.exc_info for r in caplog.records), "logged with its traceback"


def test_the_consumer_thread_survives_a_handler_raising_system_exit(transactional_db, orders):
    make_consumer("fragile", "tests.handlers.exits", orders, max_attempts=1)
    worker = Worker()
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()
    try:
        wait_for(lambda: "fragile" in worker.runners, message="the worker to load the consumer")
        publish("orders", {"n": 1}, type="order.created")
        wait_for(lambda: FailedEvent.objects.exists(), message="the exit to be filed")
        after = publish("orders", {"n": 2}, type="order.created")

        wait_for(lambda: [e for e, _, _ in handlers.seen("exits")] == [after], message="the next event handled")
        assert worker._threads["fragile"].is_alive()
    finally:
        worker.stop()
        running.join(15)


def test_a_handler_that_does_not_import_says_why_on_the_consumer_snapshot(orders):
    make_consumer("typo", "tests.eventflow.broken_handler.handle", orders)
    publish("orders", {}, type="order.created")
    worker = Worker()
    worker.refresh()

    with pytest.raises(RuntimeError):
        worker.runners["typo"].run_once()
    worker.beat()
    state = next(c for c in monitor.Monitor().step(store=False)["consumers"] if c["name"] == "typo")

    assert state["handler_error"] == "RuntimeError: settings for this handler are missing"


def test_a_handler_whose_database_is_down_keeps_its_attempts_and_the_outage_is_counted(orders):
    make_consumer("ledger", "tests.handlers.database_down_twice", orders, max_attempts=1, retry_initial=0.01)
    event_id = publish("orders", {}, type="order.created")

    drain(Worker(), until=lambda: handlers.seen("db_done"))

    assert [attempt for _, attempt, _ in handlers.seen("db_calls")] == [1, 1, 1]  # never "attempt 2 of 1"
    assert [e for e, _, _ in handlers.seen("db_done")] == [event_id]
    assert not FailedEvent.objects.exists()
    state = monitor.Monitor().step(store=False)["consumers"][0]
    assert state["infra_errors"] == 2 and state["dead"] == 0


def test_a_foreign_or_truncated_stream_entry_is_filed_once_and_takes_no_other_event_with_it(orders, payments):
    make_consumer("billing", "tests.handlers.billing", orders, payments, ack_timeout=0.5)
    client = get_redis()
    before = [publish("orders", {"n": n}, type="order.created") for n in range(3)]
    foreign = client.xadd(keys.stream("orders"), {"kind": "audit", "payload": b"\xff\x00raw"})
    truncated = client.xadd(keys.stream("orders"), {"e": b'{"id": "x1", "type": "order.cr'})
    other_topic = [publish("payments", {"n": n}, type="payment.made") for n in range(3)]
    after = [publish("orders", {"n": n}, type="order.created") for n in range(3, 6)]

    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.count() == 2)
    time.sleep(0.6)  # past the ack timeout: anything left pending would come back now
    drain(worker)

    assert Counter(e for e, _, _ in handlers.seen("billing")) == Counter(before + other_topic + after)
    rows = {row.stream_id: row for row in FailedEvent.objects.all()}
    assert set(rows) == {foreign.decode(), truncated.decode()}
    odd = rows[foreign.decode()]
    assert odd.error.startswith("unreadable entry: no 'e' field") and "kind" in odd.error
    assert (odd.event_id, odd.event_type) == (f"unreadable:{foreign.decode()}", "eventflow.unreadable")
    assert odd.event["data"]["fields"] == {"kind": "audit", "payload": "\\xff\\x00raw"}
    assert odd.event["data"]["fields_base64"]["payload"] == "/wByYXc="
    assert rows[truncated.decode()].error.startswith("unreadable entry: 'e' is not valid JSON")
    assert rows[truncated.decode()].event["data"]["fields"]["e"] == '{"id": "x1", "type": "order.cr'
    assert client.xpending(keys.stream("orders"), "billing")["pending"] == 0


def test_a_restarted_monitor_keeps_the_stalled_for_clock(orders, settings):
    settings.EVENTFLOW_MONITOR_HEALTH_WINDOW = 1.0  # the history a new monitor replays covers only this
    make_consumer("billing", "tests.handlers.billing", orders, stall_threshold=0.5)
    publish("orders", {}, type="order.created")
    worker = Worker()
    worker.refresh()
    worker.beat()  # a live worker that acks nothing: STALLED, not STOPPED

    first = monitor.Monitor()
    for _ in range(6):
        first.step()
        time.sleep(0.5)
    before = first.step()["consumers"][0]
    worker.beat()
    after = monitor.Monitor().step()["consumers"][0]

    assert before["status"] == after["status"] == "STALLED"
    assert after["value"] >= before["value"] >= 2.5, (before["reason"], after["reason"])


def test_dead_letters_reach_the_database_through_the_outbox_and_leave_nothing_pending(orders):
    make_consumer("billing", "tests.handlers.always_fails", orders, max_attempts=1)
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(4)]
    client = get_redis()

    drain(Worker(), until=lambda: FailedEvent.objects.count() == 4)

    assert sorted(FailedEvent.objects.values_list("event_id", flat=True)) == sorted(ids)
    assert set(FailedEvent.objects.values_list("error", flat=True)) == {"RuntimeError: boom"}
    assert client.hlen(keys.dead_letters("orders", "billing")) == 0
    assert client.xpending(keys.stream("orders"), "billing")["pending"] == 0


def test_the_live_tail_shows_an_unreadable_entry_as_such_instead_of_failing(orders):
    from eventflow import inspection

    good = publish("orders", {"n": 1}, type="order.created")
    truncated = get_redis().xadd(keys.stream("orders"), {"e": b'{"id": "x1", "ty'}).decode()

    events, _ = inspection.read_tail(get_redis(), "orders", None, 10)

    assert [(sid, e["id"], e["type"]) for sid, e in events][0] == (
        truncated,
        f"unreadable:{truncated}",
        "eventflow.unreadable",
    )
    assert events[1][1]["id"] == good
    assert inspection.find_event(get_redis(), "orders", truncated)["type"] == "eventflow.unreadable"


def test_a_dead_letter_the_database_cannot_store_does_not_hold_up_the_others(orders):
    from django.db import connection

    make_consumer("billing", "tests.handlers.always_fails", orders, max_attempts=1)
    odd = publish("orders", {"text": "nul \x00 inside"}, type="order.created")  # PostgreSQL's JSON refuses NUL
    plain = publish("orders", {"text": "plain"}, type="order.created")

    drain(Worker(), until=lambda: FailedEvent.objects.count() == 2)

    rows = {row.event_id: row for row in FailedEvent.objects.all()}
    assert rows[plain].event["data"] == {"text": "plain"} and rows[plain].error == "RuntimeError: boom"
    assert rows[odd].error.startswith("RuntimeError: boom")
    if connection.vendor == "postgresql":
        assert "[event kept as text" in rows[odd].error and "nul \\u0000 inside" in rows[odd].event["unstorable"]
    assert get_redis().hlen(keys.dead_letters("orders", "billing")) == 0
