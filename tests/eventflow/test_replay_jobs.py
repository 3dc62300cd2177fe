"""Replay jobs step by step, in-process: rewinding one consumer, bulk failed-event replay, lineage."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from eventflow import keys, replay_worker, replays
from eventflow.connection import get_redis
from eventflow.models import FailedEvent, Replay
from eventflow.publishing import publish_batch
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer

State = Replay.State


def publish_many(count: int, start: int = 0, type: str = "order.created") -> list[str]:
    ids: list[str] = []
    for low in range(start, start + count, 1000):
        batch = [{"type": type, "data": {"n": n}} for n in range(low, min(start + count, low + 1000))]
        ids += publish_batch("orders", batch).ids
    return ids


def stream_ids() -> list[str]:
    return [sid.decode() for sid, _ in get_redis().xrange(keys.stream("orders"))]


def rewind(consumer, topic, start: str = "0", end: str | None = None, *, rate=None, **filters) -> Replay:
    plan = replays.plan_history(
        consumer,
        topic,
        replays.bound(start, name="from", end=False),
        replays.bound(end, name="to", end=True) if end else None,
        replays.Filters(consumer_types=tuple(consumer.type_patterns()), **filters),
    )
    return replays.start(plan, consumer, topic, user=None, reason="rebuild the projection", rate=rate)


def step(worker: Worker, feeder: replay_worker.Feeder, until, timeout: float = 30.0, produce=None) -> None:
    """Step the feeder and the worker's runners in turn until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if produce is not None:
            produce()
        feeder.run_once()
        busy = worker.run_once()
        if until():
            return
        if not busy:
            time.sleep(0.002)
    raise AssertionError("the replay did not get there in time")


def job_state(job: Replay) -> str:
    job.refresh_from_db()
    return job.state


def settled(worker: Worker) -> None:
    drain(worker, timeout=60)


@pytest.fixture
def worker(billing, shipping) -> Worker:
    worker = Worker()
    worker.refresh()
    return worker


@pytest.fixture
def feeder(worker) -> replay_worker.Feeder:
    return replay_worker.Feeder(worker.id, lambda: list(worker.runners))


def test_it_rewinds_only_that_consumer_over_the_bounded_range_while_producers_publish(orders, billing, worker, feeder):
    old = publish_many(10_000)
    settled(worker)
    assert len(handlers.seen("billing")) == len(handlers.seen("shipping")) == 10_000
    job = rewind(billing, orders)
    new: list[str] = []

    def produce() -> None:
        if len(new) < 2_000:
            new.extend(publish_many(100, start=10_000 + len(new)))

    step(worker, feeder, lambda: job_state(job) == State.DONE, produce=produce)
    settled(worker)

    billing_counts = Counter(event_id for event_id, _, _ in handlers.seen("billing"))
    assert billing_counts == Counter({**{i: 2 for i in old}, **{i: 1 for i in new}})
    assert Counter(event_id for event_id, _, _ in handlers.seen("shipping")) == Counter(old + new)
    job.refresh_from_db()
    assert (job.matched, job.sent, job.handled, job.failed) == (10_000, 10_000, 10_000, 0)
    assert job.to_id == stream_ids()[9_999]


def test_it_ends_the_range_at_the_newest_event_when_it_starts(orders, billing, worker):
    publish_many(10)
    job = rewind(billing, orders)
    publish_many(5, start=10)

    assert job.to_id == stream_ids()[9]
    assert job.matched == 10


def test_it_counts_only_matching_events_and_sends_only_those(orders, billing, worker, feeder):
    publish_many(30)
    refunds = publish_many(7, start=100, type="refund.created")
    settled(worker)
    job = rewind(billing, orders, types=("refund.*",))

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    assert job.matched == 7
    replayed = Counter(e for e, _, _ in handlers.seen("billing")) - Counter(e for e, _, _ in handlers.seen("shipping"))
    assert replayed == Counter(refunds)


def test_it_filters_by_key_and_by_a_field_of_the_data(orders, billing, worker):
    publish_batch(
        "orders",
        [{"type": "t", "key": f"k{n % 3}", "data": {"n": n, "tier": "gold" if n < 4 else "x"}} for n in range(12)],
    )
    start = replays.bound("0", name="from", end=False)

    by_key = replays.plan_history(billing, orders, start, None, replays.Filters(key="k1"))
    by_field = replays.plan_history(
        billing, orders, start, None, replays.Filters(field_path="tier", field_value="gold")
    )

    assert (by_key.matching, by_field.matching) == (4, 4)


def test_it_stops_sending_when_cancelled_halfway_and_its_counts_stay_exact(orders, billing, worker, feeder):
    publish_many(3_000)
    settled(worker)
    before = len(handlers.seen("billing"))
    job = rewind(billing, orders, rate=2_000)
    step(worker, feeder, lambda: replays.progress(job).handled >= 1_000)

    replays.cancel(job)
    settled(worker)
    time.sleep(0.1)
    feeder.run_once()
    settled(worker)
    after_cancel = replays.progress(replays.lookup(job.pk))
    time.sleep(0.5)
    feeder.run_once()
    settled(worker)

    final = replays.progress(replays.lookup(job.pk))
    assert final.state == State.CANCELLED
    assert 1_000 <= final.sent < 3_000
    assert final.handled == final.sent == after_cancel.sent
    assert len(handlers.seen("billing")) - before == final.handled


def test_it_honours_the_rate_limit_within_ten_percent(orders, billing, worker, feeder):
    publish_many(600)
    settled(worker)
    before = len(handlers.seen("billing"))
    job = rewind(billing, orders, rate=300)

    started = time.monotonic()
    step(worker, feeder, lambda: len(handlers.seen("billing")) - before >= 600)
    seconds = time.monotonic() - started

    assert 600 / seconds == pytest.approx(300, rel=0.10)
    assert job_state(job) in (State.RUNNING, State.DONE)


def test_it_says_when_retention_already_cut_part_of_the_range(orders, billing, worker):
    from eventflow import retention

    publish_many(100)
    requested = replays.parse_id(stream_ids()[0])
    retention.trim("orders", 40, None)
    first = stream_ids()[0]

    plan = replays.plan_history(billing, orders, requested, None, replays.Filters())

    assert plan.matching == 40
    assert plan.first_retained == first
    assert "Retention already cut part of the range" in plan.retention_cut
    assert "60 events" in plan.retention_cut
    assert first in plan.retention_cut


def test_it_says_nothing_of_retention_when_the_range_is_whole(orders, billing, worker):
    publish_many(10)
    plan = replays.plan_history(billing, orders, replays.parse_id(stream_ids()[0]), None, replays.Filters())
    assert plan.retention_cut == ""


def test_a_replayed_delivery_carries_the_replay_id_and_its_original_stream_id(orders, worker, feeder):
    lineage = make_consumer("lineage", "tests.handlers.lineage", orders)
    worker.refresh()
    publish_many(3)
    settled(worker)
    job = rewind(lineage, orders)

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    sids = stream_ids()
    assert handlers.lineage_seen() == [(None, sid) for sid in sids] + [(job.pk, sid) for sid in sids]


def test_it_lists_every_replay_that_sent_an_event_again(orders, billing, shipping, worker, feeder):
    publish_many(5)
    settled(worker)
    sids = stream_ids()
    first = rewind(billing, orders)
    step(worker, feeder, lambda: job_state(first) == State.DONE)
    second = rewind(shipping, orders, sids[3])
    step(worker, feeder, lambda: job_state(second) == State.DONE)
    envelope = lambda sid: orjson.loads(get_redis().xrange(keys.stream("orders"), sid, sid)[0][1][b"e"])  # noqa: E731

    early = replays.sent_again("orders", sids[0], envelope(sids[0]))
    late = replays.sent_again("orders", sids[4], envelope(sids[4]))

    assert [(s.replay, s.consumer) for s in early] == [(first.pk, "billing")]
    assert [(s.replay, s.consumer) for s in late] == [(second.pk, "shipping"), (first.pk, "billing")]


def test_it_resumes_where_it_was_after_its_worker_stops(orders, billing, worker, feeder):
    publish_many(2_000)
    settled(worker)
    before = len(handlers.seen("billing"))
    job = rewind(billing, orders, rate=2_000)
    step(worker, feeder, lambda: replays.progress(job).handled >= 500)
    feeder.release_all()  # the worker stops: its lease goes

    other = replay_worker.Feeder("another-worker", lambda: ["billing"])
    step(worker, other, lambda: job_state(job) == State.DONE)

    replayed = Counter(e for e, _, _ in handlers.seen("billing")[before:])
    assert len(replayed) == 2_000 and set(replayed.values()) == {1}


def test_one_job_per_lane_runs_at_a_time(orders, billing, worker, feeder):
    publish_many(20)
    settled(worker)
    first, second = rewind(billing, orders), rewind(billing, orders)

    step(worker, feeder, lambda: job_state(first) == State.DONE)
    assert job_state(second) == State.PLANNED
    step(worker, feeder, lambda: job_state(second) == State.DONE)


def test_bulk_failed_replay_is_bounded_and_does_not_repick_what_fails_again(orders, worker, feeder):
    flaky = make_consumer("flaky", "tests.handlers.always_fails", orders, max_attempts=1)
    worker.refresh()
    publish_many(50)
    settled(worker)
    assert FailedEvent.objects.filter(consumer=flaky).count() == 50
    plan = replays.plan_failed(flaky, orders, replays.Filters())
    job = replays.start(plan, flaky, orders, user=None, reason="after the fix", rate=None)

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    job.refresh_from_db()
    assert (job.matched, job.sent, job.handled, job.failed) == (50, 50, 0, 50)
    rows = FailedEvent.objects.filter(consumer=flaky)
    assert set(rows.values_list("status", flat=True)) == {FailedEvent.Status.FAILED_AGAIN}
    assert set(rows.values_list("replay_count", flat=True)) == {1}


def test_bulk_failed_replay_resolves_what_now_succeeds(orders, worker, feeder):
    flaky = make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    worker.refresh()
    publish_many(20)
    settled(worker)
    handlers.fix_flaky()
    plan = replays.plan_failed(flaky, orders, replays.Filters())
    job = replays.start(plan, flaky, orders, user=None, reason="fixed odd numbers", rate=None)

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    job.refresh_from_db()
    assert (job.matched, job.handled, job.failed) == (10, 10, 0)
    assert set(FailedEvent.objects.filter(consumer=flaky).values_list("status", flat=True)) == {"resolved"}


def test_a_rewind_after_its_topic_and_consumer_were_renamed_uses_their_redis_identities(orders, billing, worker):
    old = publish_many(50)
    settled(worker)
    orders.name, billing.name = "sales", "invoicing"
    orders.save()
    billing.save()
    worker.refresh()
    feeder = replay_worker.Feeder(worker.id, lambda: list(worker.runners))
    job = rewind(billing, orders)

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    job.refresh_from_db()
    assert (job.matched, job.sent, job.handled, job.failed) == (50, 50, 50, 0)
    assert Counter(event_id for event_id, _, _ in handlers.seen("billing")) == Counter({i: 2 for i in old})
    assert get_redis().exists(keys.replay_progress("orders", job.pk))
    made = [k.decode() for k in get_redis().scan_iter(match=f"{keys.stream('orders').split('{')[0]}*")]
    assert not [k for k in made if "sales" in k or "invoicing" in k]


def test_the_replay_stream_is_trimmed_of_what_was_delivered_and_acked_once_the_job_is_done(
    orders, billing, worker, feeder
):
    publish_many(5_000)
    settled(worker)
    job = rewind(billing, orders)

    step(worker, feeder, lambda: job_state(job) == State.DONE)

    assert get_redis().xlen(keys.replay_stream("orders", "billing")) == 0
    assert replays.progress(replays.lookup(job.pk)).handled == 5_000


def test_a_cancelled_job_leaves_nothing_in_its_replay_stream(orders, billing, worker, feeder):
    publish_many(3_000)
    settled(worker)
    job = rewind(billing, orders, rate=2_000)
    step(worker, feeder, lambda: replays.progress(job).handled >= 500)

    replays.cancel(job)
    settled(worker)  # what a worker had claimed is still handled
    feeder.run_once()

    assert get_redis().xlen(keys.replay_stream("orders", "billing")) == 0


def test_trimming_keeps_what_is_pending_or_not_delivered_yet(orders, billing):
    client, stream, group = get_redis(), keys.replay_stream("orders", "billing"), keys.group("billing")
    client.xgroup_create(stream, group, id="0", mkstream=True)
    ids = [client.xadd(stream, {"e": b"{}", "s": b"1-0", "r": b"1"}) for _ in range(5)]
    client.xreadgroup(group, "w1", {stream: ">"}, count=3)
    client.xack(stream, group, ids[0], ids[2])

    assert replays.trim_replay_stream("orders", "billing") == 1  # the second one is still pending
    client.xack(stream, group, ids[1])
    assert replays.trim_replay_stream("orders", "billing") == 2
    assert [sid for sid, _ in client.xrange(stream)] == ids[3:]  # never delivered: kept


@pytest.mark.django_db(transaction=True)  # the feeder's thread reads the job from its own connection
def test_an_idle_feeder_takes_a_started_job_up_at_once_not_at_its_next_look(orders, billing, worker, monkeypatch):
    import threading

    monkeypatch.setattr(replay_worker, "JOB_REFRESH", 5.0)  # only the announcement can wake it in time
    publish_many(10)
    settled(worker)
    feeder = replay_worker.Feeder(worker.id, lambda: ["billing"])
    stop = threading.Event()
    thread = threading.Thread(target=feeder.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)  # it looked, found nothing, and waits
        job = rewind(billing, orders)
        deadline = time.monotonic() + 2.0
        while job_state(job) == State.PLANNED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert job_state(job) != State.PLANNED
    finally:
        stop.set()
        thread.join(timeout=10)
