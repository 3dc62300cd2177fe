"""Fault 5: retention trims a topic while consumers still hold or have not read events.

Nothing is dropped silently: for every consumer, the events it never handled
are at most the ``trimmed:<consumer>`` count the trim pass added, and for a
consumer that acknowledged nothing, exactly that count.
"""

from __future__ import annotations

import time

import httpx
import pytest

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.models import Consumer, Topic
from tests.reliability.conftest import build_flow
from tests.reliability.harness import Ledger, Subscriber, effects, new_events, sized, wait

pytestmark = [pytest.mark.processes]

FAST = Subscriber("fast", "effect", ("clicks",))
SLOW = Subscriber("slow", "effect", ("clicks",))
PAUSED = Subscriber("paused", "effect", ("clicks",))
KEEP = 100


def trimmed(consumer: str) -> int:
    return int(get_redis().hget(keys.counters("clicks"), f"trimmed:{consumer}") or 0)


def test_trimming_counts_every_unacknowledged_event_it_cuts(scenario, fleet):
    token = build_flow([FAST, SLOW, PAUSED])
    Topic.objects.filter(name="clicks").update(retention_max_events=KEEP)
    Consumer.objects.filter(name="paused").update(paused=True)
    processes = fleet()
    url = processes.web()
    processes.worker()
    wait(lambda: get_redis().zcard(keys.workers()), 20, "the worker's first heartbeat")
    time.sleep(0.5)  # past its first retention pass: the next one comes RETENTION_INTERVAL (5 s) later
    total = sized(1_000, 20_000)
    ledger = Ledger()
    events = new_events(total, **{"sleep_ms:fast": 0, "sleep_ms:slow": 20})
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for start in range(0, total, 100):
            ledger.publish_http(client, "clicks", events[start : start + 100])

    wait(lambda: get_redis().xlen(keys.stream("clicks")) <= KEEP, 30, "the stream to be trimmed to its limit")
    wait(lambda: not get_redis().xpending(keys.stream("clicks"), "slow")["pending"], 60, "slow to finish")
    cut = int(get_redis().hget(keys.counters("clicks"), "trimmed") or 0)
    Consumer.objects.filter(name="paused").update(paused=False)
    wait(lambda: len(effects(PAUSED, scenario)) >= total - cut, 30, "the paused consumer to drain what is left")

    unhandled = {
        s.name: len(ledger.ids("ok") - {r.event_id for r in effects(s, scenario)}) for s in (FAST, SLOW, PAUSED)
    }
    counted = {s.name: trimmed(s.name) for s in (FAST, SLOW, PAUSED)}
    print(f"\n== reliability report: trimming ==\npublished {len(ledger.ids('ok'))}, cut {cut}, kept {KEEP}")
    print(f"never handled {unhandled}\ncounted       {counted}")
    assert len(ledger.ids("ok")) == total and cut >= total - KEEP - 100
    assert all(unhandled[name] <= counted[name] for name in unhandled), (unhandled, counted)
    assert unhandled["paused"] == counted["paused"] == cut
    assert unhandled["fast"] == counted["fast"] == 0  # it kept up: nothing of its was cut
    assert 0 < unhandled["slow"] <= counted["slow"]  # held or unread when cut: counted
