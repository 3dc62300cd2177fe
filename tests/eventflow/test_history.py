"""A restarted monitor picks its health window and sparklines up from the history kept in Redis."""

from __future__ import annotations

import time

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.monitor import Monitor
from eventflow.publishing import publish
from tests.eventflow.test_monitor import beat
from tests.helpers import consumer_state, make_consumer, subscribe


def remember(consumer: str, seconds_ago: range, **fields_at) -> None:
    """Write per-second history entries as an earlier monitor would have, oldest first.

    ``fields_at`` maps a field letter (a, e, b, o) to a function of the age in seconds.
    """
    client = get_redis()
    now = int(time.time())
    for age in sorted(seconds_ago, reverse=True):
        fields = {"p": 0} | {f"{letter}:{consumer}": value(age) for letter, value in fields_at.items()}
        client.xadd(keys.rate_history("orders", "s"), fields, id=f"{(now - age) * 1000}-0")


def counters(**values: int) -> None:
    get_redis().hset(keys.counters("orders"), mapping=values)


def test_a_restarted_monitor_keeps_the_stall_clock_of_a_backlog_nobody_acks(orders):
    hung = make_consumer("hung", "tests.handlers.billing", orders, stall_threshold=5.0)
    subscribe(hung)
    beat("hung")
    publish("orders", {"n": 1}, type="order.created")  # waiting, never read: no pending age to go by
    remember("hung", range(2, 21), a=lambda age: 0, e=lambda age: 0, b=lambda age: 1, o=lambda age: 0)
    state = consumer_state(Monitor(flow_refresh=0).step(), "hung")
    assert state["status"] == "STALLED"
    assert state["reason"].startswith("no ack for 2")  # 20 s, give or take the clock


def test_a_restarted_monitor_still_sees_a_backlog_that_grew_before_it_started(orders, billing):
    subscribe(billing)
    beat("billing")
    for n in range(5):
        publish("orders", {"n": n}, type="order.created")
    counters(**{"acked:billing": 40})
    remember("billing", range(2, 31), a=lambda age: 40 - age, e=lambda age: 0, b=lambda age: (30 - age) // 6, o=int)
    state = consumer_state(Monitor(flow_refresh=0).step(), "billing")
    assert state["status"] == "LAGGING"
    assert state["reason"].startswith("backlog +5 in 3")


def test_a_restarted_monitor_still_sees_a_consumer_failing(orders, billing):
    subscribe(billing)
    beat("billing")
    counters(**{"acked:billing": 2, "errors:billing": 10})
    remember("billing", range(2, 22), a=lambda age: 2 if age < 10 else 0, e=lambda age: 20 - age if age < 20 else 0)
    state = consumer_state(Monitor(flow_refresh=0).step(), "billing")
    assert state["status"] == "FAILING"
    assert state["errors_in_window"] == 10


def test_a_restarted_monitor_draws_the_sparkline_it_had(orders, billing):
    subscribe(billing)
    remember("billing", range(2, 12), a=lambda age: (12 - age) * 3, e=lambda age: 0, b=lambda age: 0)
    spark = consumer_state(Monitor(flow_refresh=0).step(), "billing")["spark"]
    assert spark[:9] == [3.0] * 9


def test_history_of_another_topic_is_not_summed_into_a_partial_second(orders, payments):
    both = make_consumer("both", "tests.handlers.billing", orders, payments, stall_threshold=5.0)
    subscribe(both)
    beat("both")
    publish("orders", {"n": 1}, type="order.created")
    # Only orders has history: with payments missing, no second is complete, so nothing is replayed.
    remember("both", range(2, 21), a=lambda age: 0, e=lambda age: 0, b=lambda age: 1, o=lambda age: 0)
    assert consumer_state(Monitor(flow_refresh=0).step(), "both")["status"] == "OK"
