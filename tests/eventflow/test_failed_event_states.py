"""FailedEvent's one status vocabulary: open, replayable, closed."""

from __future__ import annotations

import pytest

from eventflow.models import FailedEvent

Status = FailedEvent.Status


def test_every_status_is_either_open_or_closed():
    assert sorted(FailedEvent.OPEN + FailedEvent.CLOSED) == sorted(Status.values)
    assert set(FailedEvent.REPLAYABLE) < set(FailedEvent.OPEN)


@pytest.fixture
def one_row_per_status(billing, orders):
    for status in Status.values:
        FailedEvent.objects.create(
            consumer=billing,
            topic=orders,
            event_id=f"ev-{status}",
            event_type="order.created",
            event={},
            error="x",
            status=status,
        )


def statuses(rows) -> set[str]:
    return set(rows.values_list("status", flat=True))


def test_open_rows_are_those_still_waiting_for_an_outcome(one_row_per_status):
    assert statuses(FailedEvent.objects.open()) == {Status.FAILED, Status.FAILED_AGAIN, Status.REPLAYING}


def test_replayable_rows_are_open_and_not_already_replaying(one_row_per_status):
    assert statuses(FailedEvent.objects.replayable()) == {Status.FAILED, Status.FAILED_AGAIN}
    assert all(row.is_replayable for row in FailedEvent.objects.replayable())
    assert not any(row.is_replayable for row in FailedEvent.objects.exclude(status__in=FailedEvent.REPLAYABLE))
