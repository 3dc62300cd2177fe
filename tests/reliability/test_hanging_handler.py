"""Fault 6: a worker stops (SIGSTOP) while it holds events.

Another worker reclaims them after the ack timeout and handles them; when the
stopped worker continues (SIGCONT), it finishes its handlers late and acks,
and ``@idempotent`` keeps those late runs from committing a second effect.
"""

from __future__ import annotations

import signal
import time

import httpx
import orjson
import pytest

from eventflow import keys
from eventflow.connection import get_redis
from tests.reliability import handlers
from tests.reliability.conftest import build_flow
from tests.reliability.harness import Ledger, Subscriber, drained, measure, new_events, pending, records, sized, wait

pytestmark = [pytest.mark.processes]

BILLING = Subscriber("billing", "once", ("orders",))
ACK_TIMEOUT = 1.0
WORK_MS = 200


def in_handler_sleep(pid: int) -> bool:
    """True while ``pid`` is early in a handler's 200 ms of work (outside any transaction)."""
    for raw in handlers.store().lrange(handlers.store_key("deliveries"), -20, -1)[::-1]:
        _, _, _, who, at = raw.decode().split("|")
        if int(who) == pid:
            return time.time() - float(at) < WORK_MS / 2000
    return False


def worker_names_by_pid() -> dict[int, str]:
    out = {}
    for key in get_redis().scan_iter(keys.worker("*"), count=10_000):  # a shared Redis may hold many keys
        document = orjson.loads(get_redis().get(key) or b"{}")
        if document:
            out[document["pid"]] = document["id"]
    return out


def held_by(name: str) -> int:
    summary = get_redis().xpending(keys.stream("orders"), "billing")
    return sum(c["pending"] for c in summary["consumers"] if c["name"].decode() == name)


def test_a_stopped_worker_s_events_are_reclaimed_and_its_late_acks_add_no_effect(scenario, fleet):
    token = build_flow([BILLING], ack_timeout=ACK_TIMEOUT)
    processes = fleet()
    url = processes.web()
    stopped, other = processes.worker(), processes.worker()
    ledger = Ledger()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        ledger.publish_http(client, "orders", new_events(sized(20, 400), sleep_ms=WORK_MS))
    name = wait(lambda: worker_names_by_pid().get(stopped.pid), 20, "the worker's heartbeat")
    wait(lambda: held_by(name) and in_handler_sleep(stopped.pid), 20, "the worker to be inside a handler", 0.005)

    stopped.send_signal(signal.SIGSTOP)
    stopped_at, held = time.time(), held_by(name)
    wait(lambda: drained(ledger, [BILLING], scenario), sized(60, 600), "the other worker to handle everything")
    drained_at = time.time()
    stopped.send_signal(signal.SIGCONT)
    wait(lambda: not pending(get_redis(), [BILLING]), 20, "no pending event")
    time.sleep(1)  # the continued worker's late handler runs and acks

    deliveries = records("deliveries")
    firsts = {}
    for r in deliveries:
        firsts.setdefault(r.event_id, r.pid)
    reclaimed = {r.event_id for r in deliveries if r.pid == other.pid and firsts[r.event_id] == stopped.pid}
    report = measure(scenario, ledger, [BILLING], "hanging handler (SIGSTOP)")
    report.timings = {"stopped until drained": drained_at - stopped_at}
    report.extra = {"held when stopped": held, "reclaimed by other": len(reclaimed)}
    report.show().assert_sound()
    assert held and len(reclaimed) >= 1
    assert stopped.poll() is None and other.poll() is None
