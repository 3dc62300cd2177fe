"""Edit before replay, in-process: the corrected copy goes to that consumer once; the original stays as it was."""

from __future__ import annotations

import time

import pytest

from eventflow import edits, keys, replay_worker, replays
from eventflow.connection import get_redis
from eventflow.errors import Conflict, InvalidEvent, TooLarge
from eventflow.models import FailedEvent, FailedEventEdit, Replay
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain

Status = FailedEvent.Status
State = Replay.State


@pytest.fixture
def worker(strict, shipping) -> Worker:
    worker = Worker()
    worker.refresh()
    return worker


@pytest.fixture
def feeder(worker) -> replay_worker.Feeder:
    return replay_worker.Feeder(worker.id, lambda: list(worker.runners))


@pytest.fixture
def row(text_amount, worker) -> FailedEvent:
    return text_amount


def step(worker: Worker, feeder: replay_worker.Feeder, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feeder.run_once()
        busy = worker.run_once()
        if until():
            return
        if not busy:
            time.sleep(0.005)
    raise AssertionError("the edited copy did not get there in time")


def job_state(job: Replay) -> str:
    job.refresh_from_db()
    return job.state


def stream_entry(stream_id: str) -> bytes:
    return get_redis().xrange(keys.stream("orders"), stream_id, stream_id)[0][1][b"e"]


def test_the_corrected_copy_goes_once_to_that_consumer_only_and_the_original_stays(row, worker, feeder):
    original_entry, original_event = stream_entry(row.stream_id), dict(row.event)
    shipped = len(handlers.seen("shipping"))

    edit = edits.send(edits.plan(row, {"amount": 12.5, "customer": {"tier": "gold"}}), None, "amount sent as text")
    step(worker, feeder, lambda: job_state(edit.replay) == State.DONE)
    drain(worker)

    corrected = {"id": row.event_id, "data": {"amount": 12.5, "customer": {"tier": "gold"}}}
    assert handlers.amounts_handled() == [{**corrected, "replay": edit.replay.pk, "stream_id": row.stream_id}]
    assert len(handlers.seen("shipping")) == shipped == 1
    row.refresh_from_db()
    assert (row.status, row.event, row.replay_count) == (Status.RESOLVED, original_event, 1)
    assert stream_entry(row.stream_id) == original_entry
    job = edit.replay
    assert (job.source, job.matched, job.sent, job.handled, job.failed) == ("edit", 1, 1, 1, 0)
    assert edit.envelope == {**original_event, "data": corrected["data"]}


def test_a_copy_that_fails_again_leaves_the_original_data_on_the_row(row, worker, feeder):
    edit = edits.send(edits.plan(row, {"amount": "still text"}), None, "try another spelling")

    step(worker, feeder, lambda: job_state(edit.replay) == State.DONE)

    row.refresh_from_db()
    assert row.status == Status.FAILED_AGAIN and row.event["data"]["amount"] == "12.50"
    assert "still text" in row.error
    assert (edit.replay.handled, edit.replay.failed) == (0, 1)


def test_the_event_lists_the_edit_among_the_replays_that_sent_it_again(row, worker, feeder):
    edit = edits.send(edits.plan(row, {"amount": 12.5}), None, "amount sent as text")
    step(worker, feeder, lambda: job_state(edit.replay) == State.DONE)

    sent = replays.sent_again("orders", row.stream_id, row.event)

    assert [(s.replay, s.consumer, s.reason) for s in sent] == [(edit.replay.pk, "strict", "amount sent as text")]


def test_cancelling_before_a_worker_took_it_makes_the_row_replayable_again(row):
    edit = edits.send(edits.plan(row, {"amount": 12.5}), None, "amount sent as text")

    replays.cancel(edit.replay)

    row.refresh_from_db()
    assert (row.status, row.replay_count) == (Status.FAILED, 0)
    assert (edit.replay.state, edit.replay.sent) == (State.CANCELLED, 0)


def test_the_diff_names_each_changed_path_with_its_old_and_new_values():
    old = {"amount": "12", "items": [1, 2, 3], "note": "x", "a/b": {"~": 0}}
    new = {"amount": 12, "items": [1, 5], "a/b": {"~": False}, "tier": None}

    changes = list(edits.diff(old, new))

    assert changes == [
        {"path": "/data/amount", "op": "changed", "old": "12", "new": 12},
        {"path": "/data/items/1", "op": "changed", "old": 2, "new": 5},
        {"path": "/data/items/2", "op": "removed", "old": 3},
        {"path": "/data/note", "op": "removed", "old": "x"},
        {"path": "/data/a~1b/~0", "op": "changed", "old": 0, "new": False},
        {"path": "/data/tier", "op": "added", "new": None},
    ]


def test_it_refuses_data_the_topics_schema_refuses_and_says_where(orders, row):
    orders.data_schema = {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}}
    orders.save()

    with pytest.raises(InvalidEvent) as refused:
        edits.plan(row, {"amount": -3})

    assert refused.value.status == 422 and refused.value.code == "schema_mismatch"
    assert "data at amount" in refused.value.message and "minimum" in refused.value.message


def test_it_refuses_a_copy_over_the_topics_size_limit(orders, row):
    orders.max_event_bytes = 1024
    orders.save()

    with pytest.raises(TooLarge) as refused:
        edits.plan(row, {"amount": 1, "note": "x" * 2000})

    assert refused.value.status == 413 and "over the topic's limit of 1024 bytes" in refused.value.message


def test_it_refuses_an_edit_that_changes_nothing_and_a_row_that_is_not_replayable(row):
    with pytest.raises(InvalidEvent) as unchanged:
        edits.plan(row, dict(row.event["data"]))
    row.status = Status.RESOLVED

    with pytest.raises(Conflict) as resolved:
        edits.plan(row, {"amount": 1})

    assert unchanged.value.code == "unchanged"
    assert resolved.value.status == 409 and "resolved, not replayable" in resolved.value.message
    assert not FailedEventEdit.objects.exists()


def test_a_second_send_of_the_same_plan_is_refused(row):
    checked = edits.plan(row, {"amount": 12.5})
    edits.send(checked, None, "first")

    with pytest.raises(Conflict):
        edits.send(checked, None, "double click")

    assert FailedEventEdit.objects.count() == 1 and Replay.objects.count() == 1


@pytest.mark.parametrize(
    "envelope",
    [
        {"id": "u1", "type": "eventflow.unreadable", "source": "eventflow", "data": {"fields": {}}},
        {"id": "b1", "type": "order.created", "source": "shop", "data_base64": "AAE="},
        {"id": "s1", "type": "order.created", "source": "shop", "unstorable": "{...}"},
        ["not", "an", "envelope"],
    ],
)
def test_it_refuses_to_edit_what_holds_no_json_event(row, envelope):
    row.event = envelope

    with pytest.raises(InvalidEvent) as refused:
        edits.plan(row, {"amount": 1})

    assert refused.value.code == "not_editable"
