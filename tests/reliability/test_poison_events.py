"""Fault 4: poison events next to transient failures and a healthy flow.

A poison event fails every attempt: it is tried exactly ``max_attempts`` times,
with the configured backoff between attempts, and becomes exactly one
FailedEvent. A transient failure succeeds on a later attempt and leaves no
FailedEvent. Healthy events keep flowing meanwhile, to the same consumer and
to the other subscriber.
"""

from __future__ import annotations

import time
from collections import defaultdict

import httpx
import pytest

from eventflow.models import Consumer, FailedEvent
from tests.reliability.conftest import build_flow
from tests.reliability.harness import Ledger, Record, Subscriber, drained, measure, new_events, records, sized, wait

pytestmark = [pytest.mark.processes]

RISKY = Subscriber("risky", "flaky", ("orders",))
BILLING = Subscriber("billing", "once", ("orders",))
MAX_ATTEMPTS, INITIAL, FACTOR, CAP = 4, 0.2, 2.0, 0.5  # waits 0.2, 0.4, 0.5 s
LATE_BY_AT_MOST = 1.0  # a due retry waits for the worker's next step (and a loaded CI machine)


def attempts_by_event(consumer: str) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for r in records("deliveries"):
        if r.consumer == consumer:
            out[r.event_id].append(r)
    return out


def test_poison_events_become_one_failed_event_each_after_max_attempts_with_backoff(scenario, fleet):
    token = build_flow([RISKY, BILLING])
    Consumer.objects.filter(name="risky").update(
        max_attempts=MAX_ATTEMPTS, retry_initial=INITIAL, retry_factor=FACTOR, retry_max=CAP
    )
    processes = fleet()
    url = processes.web()
    processes.worker(), processes.worker()
    poison, transient, healthy = Ledger(), Ledger(), Ledger()
    count = sized(20, 500)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        poison.publish_http(client, "orders", new_events(count, poison=True, sleep_ms=0))
        transient.publish_http(client, "orders", new_events(count, fail_times=2, sleep_ms=0))
        published_healthy = time.time()
        for _ in range(sized(10, 100)):
            healthy.publish_http(client, "orders", new_events(20))
    everything = Ledger(
        {**poison.outcomes, **transient.outcomes, **healthy.outcomes},
        {**poison.topic_of, **transient.topic_of, **healthy.topic_of},
    )
    not_poison = Ledger({**transient.outcomes, **healthy.outcomes}, {**transient.topic_of, **healthy.topic_of})

    # The consumer retrying the poison events keeps handling healthy ones meanwhile. (Billing,
    # the other subscriber, drains at the pace of its own 0–20 ms handler; checked below.)
    wait(lambda: drained(healthy, [RISKY], scenario), 60, "the healthy events")
    healthy_done = time.time()
    wait(lambda: FailedEvent.objects.count() >= count and drained(everything, [BILLING], scenario), 60, "the failures")
    wait(lambda: drained(not_poison, [RISKY], scenario), 30, "the transient failures to succeed")
    time.sleep(1)  # room for any attempt past max_attempts to show

    tries = attempts_by_event("risky")
    gaps = [b.at - a.at for event_id in poison.ids("ok") for a, b in zip(tries[event_id], tries[event_id][1:])]
    waits = [min(CAP, INITIAL * FACTOR ** (n - 1)) for n in range(1, MAX_ATTEMPTS)] * count
    early = [round(g - w, 3) for g, w in zip(gaps, waits) if g < w - 0.01]
    late = [round(g - w, 3) for g, w in zip(gaps, waits) if g > w + LATE_BY_AT_MOST]
    rows = FailedEvent.objects.filter(consumer__name="risky")
    report = measure(scenario, not_poison, [RISKY], "poison events: risky")
    billing = measure(scenario, everything, [BILLING], "poison events: billing")
    report.timings = {"healthy drained": healthy_done - published_healthy}
    report.extra = {
        "tries per poison": sorted({len(tries[i]) for i in poison.ids("ok")}),
        "tries per transient": sorted({len(tries[i]) for i in transient.ids("ok")}),
        "failed events": rows.count(),
        "backoff gaps": f"{len(gaps)}, {sum(g - w for g, w in zip(gaps, waits)) / len(gaps):.3f} s late on average",
        "billing lost/dup": (billing.lost, billing.duplicates),
    }
    report.show().assert_sound()
    billing.assert_sound()
    assert {len(tries[i]) for i in poison.ids("ok")} == {MAX_ATTEMPTS}
    assert [r.attempt for r in tries[next(iter(poison.ids("ok")))]] == list(range(1, MAX_ATTEMPTS + 1))
    assert not early and not late, (early, late)
    assert sorted(rows.values_list("event_id", flat=True)) == sorted(poison.ids("ok"))  # exactly one each
    assert set(rows.values_list("attempts", flat=True)) == {MAX_ATTEMPTS}
    assert {len(tries[i]) for i in transient.ids("ok")} == {3}
    assert healthy_done - published_healthy < sum(waits[: MAX_ATTEMPTS - 1]) + 5
