"""A rewind outlives its worker: stopped (SIGTERM) or killed (SIGKILL), another resumes at the cursor.

CI tier: 3,000 events, a throttled replay, its worker stopped halfway. Long
tier (``EVENTFLOW_LONG=1``) also kills one with SIGKILL: the lease expires
(10 s), the in-flight batch is taken over after the ack timeout, and every
event of the range is still handled again (at least once).
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from eventflow import replay_worker, replays
from eventflow.models import Replay
from eventflow.publishing import publish_batch
from tests import handlers
from tests.helpers import make_consumer, wait_for
from tests.reliability.harness import LONG

pytestmark = [pytest.mark.processes]

EVENTS = 3_000


@pytest.fixture
def flow(transactional_db, orders):
    billing = make_consumer("billing", "tests.handlers.billing", orders, ack_timeout=2.0)
    ids = []
    for low in range(0, EVENTS, 1000):
        ids += publish_batch(
            "orders", [{"type": "order.created", "data": {"n": n}} for n in range(low, low + 1000)]
        ).ids
    return billing, ids


def start_rewind(billing, orders, rate: float) -> Replay:
    plan = replays.plan_history(billing, orders, (0, 0), None, replays.Filters())
    return replays.start(plan, billing, orders, user=None, reason="restart drill", rate=rate)


def handled(job: Replay) -> int:
    return replays.progress(replays.lookup(job.pk)).handled


def replayed_ids(before: int) -> Counter:
    return Counter(event_id for event_id, _, _ in handlers.seen("billing")[before:])


def run_until_halfway(spawn_worker, billing, orders, ids, rate: float):
    first = spawn_worker("billing")
    wait_for(lambda: len(handlers.seen("billing")) >= EVENTS, timeout=60, message="the first delivery")
    before = len(handlers.seen("billing"))
    job = start_rewind(billing, orders, rate)
    wait_for(lambda: handled(job) >= EVENTS // 3, timeout=60, message="a third of the replay")
    return first, job, before


def test_a_stopped_workers_replay_resumes_at_its_cursor_without_repeats(spawn_worker, flow, orders):
    billing, ids = flow
    first, job, before = run_until_halfway(spawn_worker, billing, orders, ids, rate=1_000)

    first.send_signal(signal.SIGTERM)
    first.wait(30)
    stopped_at = handled(job)
    spawn_worker("billing")
    wait_for(lambda: Replay.objects.get(pk=job.pk).state == Replay.State.DONE, timeout=60, message="the replay")

    assert stopped_at < EVENTS
    assert replayed_ids(before) == Counter(ids)  # every event of the range once more, none twice
    job.refresh_from_db()
    assert (job.sent, job.handled, job.failed) == (EVENTS, EVENTS, 0)


@pytest.mark.skipif(not LONG, reason="waits out a 10 s lease: long tier (EVENTFLOW_LONG=1)")
def test_a_killed_workers_replay_is_taken_over_and_finishes(spawn_worker, flow, orders):
    billing, ids = flow
    first, job, before = run_until_halfway(spawn_worker, billing, orders, ids, rate=1_000)

    first.kill()
    first.wait(10)
    killed_at = time.monotonic()
    spawn_worker("billing")
    wait_for(lambda: Replay.objects.get(pk=job.pk).state == Replay.State.DONE, timeout=90, message="the replay")

    replayed = replayed_ids(before)
    assert set(replayed) == set(ids)  # at least once each; the killed batch may come twice
    assert sum(replayed.values()) - EVENTS <= 1_000
    assert time.monotonic() - killed_at < replay_worker.LEASE_SECONDS + 30
