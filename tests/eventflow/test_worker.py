"""The worker step by step, in-process, against a real Redis."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from eventflow import delivery, failures, keys, publish
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.worker import ConsumerRunner, Worker
from tests import handlers
from tests.helpers import drain, make_consumer


def test_every_subscribed_consumer_handles_every_event_once(billing, shipping):
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(50)]

    drain(Worker())

    for name in ("billing", "shipping"):
        assert Counter(event_id for event_id, _, _ in handlers.seen(name)) == Counter(ids)


def test_workers_of_one_consumer_compete_for_events(billing):
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(40)]
    first, second = Worker(), Worker()
    first.refresh(), second.refresh()
    deadline = time.monotonic() + 10
    while len(handlers.seen("billing")) < 40 and time.monotonic() < deadline:
        first.runners["billing"].run_once()
        second.runners["billing"].run_once()

    assert sorted(e for e, _, _ in handlers.seen("billing")) == sorted(ids)


def test_a_consumer_only_handles_the_event_types_it_asks_for(orders):
    make_consumer("refunds", "tests.handlers.billing", orders, event_types="refund.*, order.cancelled")
    wanted = publish("orders", {}, type="refund.created")
    cancelled = publish("orders", {}, type="order.cancelled")
    publish("orders", {}, type="order.created")

    drain(Worker())

    assert sorted(e for e, _, _ in handlers.seen("billing")) == sorted([wanted, cancelled])


def test_a_failing_event_is_retried_with_backoff_then_becomes_one_failed_event(orders):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=3, retry_initial=0.2, retry_factor=2)
    bad = publish("orders", {"n": 1}, type="order.created")
    good = publish("orders", {"n": 2}, type="order.created")
    worker = Worker()

    worker.run_once()
    worker.run_once()
    # The healthy event is not held up by the failing one, waiting for its retry.
    assert [e for e, _, _ in handlers.seen("flaky")] == [good]
    schedule = keys.retry_schedule("orders", "flaky")
    due = redis_score(schedule)
    assert 0.05 < due - time.time() <= 0.2 + 0.05

    drain(worker, until=lambda: FailedEvent.objects.exists())

    row = FailedEvent.objects.get()
    assert (row.event_id, row.attempts, row.status) == (bad, 3, FailedEvent.Status.FAILED)
    assert row.error == "ValueError: cannot handle odd n=1"
    assert "fails_on_odd" in row.traceback
    assert row.event["data"] == {"n": 1}


def redis_score(zset: str) -> float:
    from eventflow.connection import get_redis

    client = get_redis()
    members = client.zrange(zset, 0, -1)
    assert len(members) == 1, members
    return client.zscore(zset, members[0])


def test_a_handler_that_recovers_on_retry_leaves_no_failed_event(orders):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=3, retry_initial=0.05)
    event_id = publish("orders", {"n": 1}, type="order.created")
    worker = Worker()
    worker.run_once()
    handlers.fix_flaky()

    drain(worker, until=lambda: handlers.seen("flaky"))

    assert handlers.seen("flaky")[0][:2] == (event_id, 2)
    assert not FailedEvent.objects.exists()


def test_replay_goes_to_the_failed_consumer_only_and_resolves_the_row(orders, billing, staff_user):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    event_id = publish("orders", {"n": 3}, type="order.created")
    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.exists())
    assert len(handlers.seen("billing")) == 1

    handlers.fix_flaky()
    failures.replay(FailedEvent.objects.get(), staff_user)
    assert FailedEvent.objects.get().status == FailedEvent.Status.REPLAYING
    drain(worker, until=lambda: FailedEvent.objects.get().status == FailedEvent.Status.RESOLVED)

    row = FailedEvent.objects.get()
    assert (row.replayed_by, row.replay_count) == (staff_user, 1)
    assert [e for e, _, _ in handlers.seen("flaky")] == [event_id]
    assert len(handlers.seen("billing")) == 1  # the other subscriber saw it once, never again


def test_a_replay_that_fails_again_updates_the_same_row(orders, staff_user):
    make_consumer("doomed", "tests.handlers.always_fails", orders, max_attempts=2, retry_initial=0.01)
    publish("orders", {}, type="order.created")
    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.exists())

    failures.replay(FailedEvent.objects.get(), staff_user)
    drain(worker, until=lambda: FailedEvent.objects.get().status == FailedEvent.Status.FAILED_AGAIN)

    row = FailedEvent.objects.get()
    assert FailedEvent.objects.count() == 1
    assert row.attempts == 4


def test_a_double_replay_replays_once(orders, staff_user):
    make_consumer("doomed", "tests.handlers.always_fails", orders, max_attempts=1)
    publish("orders", {}, type="order.created")
    drain(Worker(), until=lambda: FailedEvent.objects.exists())
    row = FailedEvent.objects.get()

    failures.replay(row, staff_user)
    with pytest.raises(failures.ReplayRefused):
        failures.replay(row, staff_user)

    assert FailedEvent.objects.get().replay_count == 1


def test_a_paused_consumer_keeps_its_backlog_and_drains_it_on_resume(billing):
    billing.paused = True
    billing.save()
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(5)]
    worker = Worker()

    drain(worker)
    assert handlers.seen("billing") == []

    billing.paused = False
    billing.save()
    drain(worker, until=lambda: len(handlers.seen("billing")) == 5)
    assert sorted(e for e, _, _ in handlers.seen("billing")) == sorted(ids)


def test_events_held_by_a_dead_worker_are_reclaimed_after_the_ack_timeout(orders, redis_client):
    make_consumer("billing", "tests.handlers.billing", orders, ack_timeout=0.3)
    event_id = publish("orders", {}, type="order.created")
    # A worker that read the event and then died without acking.
    delivery.read_new(redis_client, "billing", "dead-worker", ("orders",), 10, None)
    worker = Worker()

    worker.run_once()
    assert handlers.seen("billing") == []  # still within its ack timeout

    drain(worker, until=lambda: handlers.seen("billing"))
    assert handlers.seen("billing")[0][:2] == (event_id, 2)  # the second delivery
    assert redis_client.xpending(keys.stream("orders"), "billing")["pending"] == 0


def test_an_event_that_keeps_killing_its_workers_becomes_a_failed_event(orders, redis_client):
    make_consumer("billing", "tests.handlers.billing", orders, ack_timeout=0.1, max_attempts=2)
    publish("orders", {}, type="order.created")
    for dead in ("w1", "w2"):
        delivery.read_new(redis_client, "billing", dead, ("orders",), 10, None) or delivery.reclaim_stale(
            redis_client, "orders", "billing", dead, 0, 10
        )
        time.sleep(0.15)

    drain(Worker(), until=lambda: FailedEvent.objects.exists())

    assert "worker" in FailedEvent.objects.get().error


def test_a_batch_of_poison_events_becomes_one_failed_event_each(orders):
    make_consumer("doomed", "tests.handlers.always_fails", orders, max_attempts=1)
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(30)]

    drain(Worker(), until=lambda: FailedEvent.objects.count() >= 30)

    rows = FailedEvent.objects.filter(consumer__name="doomed")
    assert sorted(rows.values_list("event_id", flat=True)) == sorted(ids)
    assert {(row.attempts, row.error) for row in rows} == {(1, "RuntimeError: boom")}


def test_one_batch_holding_an_event_twice_writes_one_failed_event(orders):
    doomed = make_consumer("doomed", "tests.handlers.always_fails", orders, max_attempts=1)
    envelope = {"id": "evt-1", "type": "order.created", "data": {}}
    twice = [delivery.Delivery("orders", envelope, 1, stream_id) for stream_id in ("1-0", "2-0")]

    failures.record_many(doomed.pk, [(twice[0], "first", ""), (twice[1], "second", "")])

    assert list(FailedEvent.objects.values_list("event_id", "stream_id", "error")) == [("evt-1", "2-0", "second")]


def test_an_event_failing_again_keeps_its_row_and_first_failure_time(orders, redis_client):
    make_consumer("doomed", "tests.handlers.always_fails", orders, max_attempts=1)
    event_id = publish("orders", {}, type="order.created")
    drain(Worker(), until=lambda: FailedEvent.objects.exists())
    first = FailedEvent.objects.get()
    # The same event delivered and failed again without a replay (e.g. a restored stream).
    publish("orders", {}, type="order.created", id=event_id)
    drain(Worker(), until=lambda: FailedEvent.objects.get().last_failed_at > first.last_failed_at)

    again = FailedEvent.objects.get()
    assert (again.pk, again.first_failed_at) == (first.pk, first.first_failed_at)


def test_sync_mode_runs_handlers_inline_without_redis(settings, billing):
    settings.EVENTFLOW_SYNC = True
    settings.EVENTFLOW_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: sync mode must not need it
    make_consumer("doomed", "tests.handlers.always_fails", billing.topics.get(), max_attempts=2)
    from eventflow.connection import reset

    reset()
    handled = []
    from unittest import mock

    with mock.patch("tests.handlers.record", lambda event, name="seen": handled.append((name, event.id))):
        event_id = publish("orders", {"n": 1}, type="order.created")

    assert handled == [("billing", event_id)]
    row = FailedEvent.objects.get()
    assert (row.consumer.name, row.attempts) == ("doomed", 2)


def test_slow_handlers_get_small_batches_so_workers_share_the_backlog(orders, settings):
    settings.EVENTFLOW_BATCH_SECONDS = 0.1
    make_consumer("slowpoke", "tests.handlers.slow", orders)
    for _ in range(6):
        publish("orders", {"sleep": 0.06}, type="order.created")
    worker = Worker()
    worker.refresh()
    runner = worker.runners["slowpoke"]

    sizes = []
    while runner.run_once():
        sizes.append(runner.handled - sum(sizes))

    assert sizes[:3] == [1, 2, 1]  # grew while quick, halved once a batch took too long


# --- a slow batch keeps its hold (ack timeout 0.3 s: renewed every 0.1 s) ------


def test_a_worker_keeps_the_events_of_a_batch_that_outlasts_the_ack_timeout(orders, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=0.3)
    ids = [publish("orders", {"sleep": 0.1}, type="order.created") for _ in range(6)]
    busy, other = runner_for("slowpoke"), Worker()
    batch = take_batch(busy)
    assert len(batch) == 6  # 0.6 s of work in hand
    stream = keys.stream("orders")
    delivery_counts: set[int] = set()

    def other_worker_step() -> None:
        other.run_once()  # reclaims whatever sits idle past the ack timeout
        pending = redis_client.xpending_range(stream, "slowpoke", "-", "+", 10)
        delivery_counts.update(entry["times_delivered"] for entry in pending)

    handle_while(busy, batch, other_worker_step)

    assert Counter(e for e, _, _ in handlers.seen("slow")) == Counter(ids)  # each once
    assert {attempt for _, attempt, _ in handlers.seen("slow")} == {1}
    assert delivery_counts == {1}  # renewing the hold is not another delivery
    assert redis_client.xpending(stream, "slowpoke")["pending"] == 0


def test_a_worker_leaves_an_event_another_worker_took_over_to_that_worker(orders, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=0.3)
    for _ in range(3):
        publish("orders", {"sleep": 0.12}, type="order.created")
    runner = runner_for("slowpoke")
    first, theirs, last = take_batch(runner)
    stream = keys.stream("orders")
    # Taken over before its turn came, as another worker's reclaim_stale would.
    redis_client.xclaim(stream, "slowpoke", "other-worker", 0, [theirs.stream_id])

    runner.handle(handlers.slow, [first, theirs, last])

    assert [e for e, _, _ in handlers.seen("slow")] == [first.envelope["id"], last.envelope["id"]]
    (entry,) = redis_client.xpending_range(stream, "slowpoke", "-", "+", 10)
    assert (entry["message_id"].decode(), entry["consumer"].decode()) == (theirs.stream_id, "other-worker")
    counters = redis_client.hgetall(keys.counters("orders"))
    assert (counters.get(b"acked:slowpoke"), counters.get(b"errors:slowpoke")) == (b"2", None)
    assert runner.handled == 2


def test_a_worker_keeps_the_retries_of_a_batch_that_outlasts_the_ack_timeout(orders, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=0.3)
    ids = retried_now("slowpoke", [{"sleep": 0.1}] * 6)
    busy, other = runner_for("slowpoke"), Worker()
    batch = take_batch(busy)
    assert len(batch) == 6 and all(item.from_schedule for item in batch)

    handle_while(busy, batch, other.run_once)  # the other worker takes retries whose lease ran out

    assert Counter(e for e, _, _ in handlers.seen("slow")) == Counter(ids)  # each once
    assert {attempt for _, attempt, _ in handlers.seen("slow")} == {2}
    assert redis_client.zcard(keys.retry_schedule("orders", "slowpoke")) == 0


def test_a_worker_leaves_a_retry_whose_lease_another_worker_took_to_that_worker(orders, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=0.3)
    retried_now("slowpoke", [{"sleep": 0.12}] * 3)
    runner = runner_for("slowpoke")
    first, theirs, last = take_batch(runner)
    schedule = keys.retry_schedule("orders", "slowpoke")
    their_lease = time.time() + 0.3
    # Leased anew, as another worker's claim_due would once this worker's lease had run out.
    redis_client.zadd(schedule, {theirs.member: their_lease})

    runner.handle(handlers.slow, [first, theirs, last])

    assert [e for e, _, _ in handlers.seen("slow")] == [first.envelope["id"], last.envelope["id"]]
    assert redis_client.zrange(schedule, 0, -1, withscores=True) == [(theirs.member.encode(), their_lease)]


def test_renewing_a_hold_extends_a_retry_s_lease_and_resets_an_event_s_idle_time_only(orders, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=0.3)
    retried_now("slowpoke", [{}])
    publish("orders", {}, type="order.created")
    runner = runner_for("slowpoke")
    retry, event = take_batch(runner)
    first_lease = retry.lease_until
    time.sleep(0.15)

    held = delivery.refresh_hold(redis_client, "slowpoke", runner.worker_name, [retry, event], 0.3)

    assert held == [retry, event]
    schedule = keys.retry_schedule("orders", "slowpoke")
    assert redis_client.zscore(schedule, retry.member) == retry.lease_until >= first_lease + 0.1
    (entry,) = redis_client.xpending_range(keys.stream("orders"), "slowpoke", "-", "+", 10)
    assert entry["time_since_delivered"] < 100 and entry["times_delivered"] == 1


def runner_for(consumer: str) -> ConsumerRunner:
    worker = Worker([consumer])
    worker.refresh()
    return worker.runners[consumer]


def take_batch(runner: ConsumerRunner) -> list[delivery.Delivery]:
    """Take everything due in one batch, as ``run_once`` does once its batches have grown."""
    spec, client = runner.spec, get_redis()
    delivery.ensure_group(client, "orders", spec.name, start="0")
    return delivery.take(client, spec.name, runner.worker_name, spec.topics, 50, spec.ack_timeout)


def retried_now(consumer: str, data: list[dict]) -> list[str]:
    """Publish events whose first attempt failed: they wait in the consumer's schedule, due now."""
    client = get_redis()
    ids = [publish("orders", d, type="order.created") for d in data]
    delivery.ensure_group(client, "orders", consumer, start="0")
    settlement = delivery.Settlement(consumer)
    for item in delivery.read_new(client, consumer, "failed-worker", ("orders",), len(ids), None):
        settlement.retry(item, time.time())
    settlement.flush(client)
    return ids


def handle_while(runner: ConsumerRunner, batch: list[delivery.Delivery], step: Callable[[], object]) -> None:
    """Handle ``batch`` in a thread while this one calls ``step`` (another worker) until it is done."""
    with ThreadPoolExecutor(1) as pool:
        handling = pool.submit(runner.handle, handlers.slow, batch)
        while not handling.done():
            step()
            time.sleep(0.02)
        handling.result()
