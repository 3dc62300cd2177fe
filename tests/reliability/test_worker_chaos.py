"""Fault 1: workers killed with SIGKILL at random while events flow; nothing is lost.

CI tier: 1,000 events over three topics, three worker processes, a random one
killed every 1–4 s for about 8 s. Long tier (``EVENTFLOW_LONG=1``): 50,000
events and at least 40 kills.
"""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from eventflow.connection import get_redis
from tests.reliability.conftest import build_flow
from tests.reliability.harness import LONG, Ledger, Subscriber, drained, measure, new_events, pending, sized, wait

pytestmark = [pytest.mark.processes]

SUBSCRIBERS = [
    Subscriber("billing", "once", ("orders", "payments")),
    Subscriber("shipping", "effect", ("orders",)),
    Subscriber("audit", "once", ("payments", "refunds")),
]
TOPICS = ("orders", "payments", "refunds")
ACK_TIMEOUT = 1.0


def publish_steadily(url: str, token: str, ledger: Ledger, total: int, seconds: float) -> None:
    """Spread ``total`` events over ``seconds`` in batches of 25, round-robin over the topics."""
    batches = total // 25
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        started = time.monotonic()
        for n in range(batches):
            ledger.publish_http(client, TOPICS[n % len(TOPICS)], new_events(25))
            time.sleep(max(0.0, started + (n + 1) * seconds / batches - time.monotonic()))


def test_workers_killed_at_random_lose_nothing(scenario, fleet):
    token = build_flow(SUBSCRIBERS, ack_timeout=ACK_TIMEOUT)
    processes = fleet()
    url = processes.web()
    for _ in range(3):
        processes.worker()
    total, chaos_seconds, min_kills = sized(1_000, 50_000), sized(6, 110), sized(3, 40)
    ledger, rng = Ledger(), random.Random(4)
    publisher = threading.Thread(target=publish_steadily, args=(url, token, ledger, total, chaos_seconds))
    started = time.monotonic()
    publisher.start()

    while publisher.is_alive() or processes.kills < min_kills:
        time.sleep(rng.uniform(1, 4))
        processes.kill_one(rng)
    publisher.join()
    chaos_over = time.monotonic()
    oldest_after_grace = watch_pending_until_drained(ledger, scenario, since=chaos_over + 2 * ACK_TIMEOUT)
    drained_at = time.monotonic()

    report = measure(scenario, ledger, SUBSCRIBERS, "worker SIGKILL chaos")
    report.timings = {"chaos": chaos_over - started, "drain": drained_at - chaos_over}
    report.extra = {
        "kills": processes.kills,
        "oldest pending": f"{oldest_after_grace} ms, from {2 * ACK_TIMEOUT:.0f} s after the chaos stopped",
        "tier": "long" if LONG else "ci",
    }
    report.show().assert_sound()
    assert report.published["ok"] == total and processes.kills >= min_kills
    assert oldest_after_grace <= 2 * ACK_TIMEOUT * 1000, report.render()
    assert pending(get_redis(), SUBSCRIBERS) == []


def watch_pending_until_drained(ledger: Ledger, scenario: str, since: float) -> int:
    """Wait for the drain; return the oldest pending age (ms) seen from ``since`` on."""
    oldest = 0

    def done() -> bool:
        nonlocal oldest
        if time.monotonic() >= since:
            oldest = max([oldest] + [idle for _, _, idle in pending(get_redis(), SUBSCRIBERS)])
        return drained(ledger, SUBSCRIBERS, scenario) and not pending(get_redis(), SUBSCRIBERS)

    wait(done, sized(90, 900), "every ok event to be handled by every subscriber", interval=0.2)
    return oldest
