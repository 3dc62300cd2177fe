"""Dead letters: recording events a consumer gave up on, and replaying them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .connection import get_redis
from .delivery import Delivery, schedule_replay
from .models import Consumer, FailedEvent, Topic

Status = FailedEvent.Status


def record(consumer_id: int, delivery: Delivery, error: str, traceback: str) -> None:
    """Write (or update) the FailedEvent row for a delivery out of attempts.

    Idempotent per (consumer, topic, event id): a worker that dies after
    writing the row and before acking cannot create a second row.
    """
    now = timezone.now()
    if delivery.failed_event is not None:
        FailedEvent.objects.filter(pk=delivery.failed_event).update(
            status=Status.FAILED_AGAIN,
            error=error,
            traceback=traceback,
            attempts=F("attempts") + delivery.attempt,
            last_failed_at=now,
        )
        return
    envelope = delivery.envelope
    topic_id = Topic.objects.filter(name=delivery.topic).values_list("pk", flat=True).first()
    if topic_id is None:
        return  # the topic was deleted; its failed events went with it
    defaults = {
        "stream_id": delivery.stream_id,
        "event_type": str(envelope.get("type", ""))[:200],
        "event": envelope,
        "error": error,
        "traceback": traceback,
        "attempts": delivery.attempt,
        "last_failed_at": now,
        "status": Status.FAILED,
    }
    try:
        with transaction.atomic():
            FailedEvent.objects.update_or_create(
                consumer_id=consumer_id,
                topic_id=topic_id,
                event_id=str(envelope.get("id", ""))[:200],
                defaults=defaults,
            )
    except IntegrityError:
        pass  # a concurrent worker wrote the same row


def resolve(failed_event_id: int) -> None:
    """A replayed event was handled: the row is done."""
    FailedEvent.objects.filter(pk=failed_event_id).update(status=Status.RESOLVED, resolved_at=timezone.now())


class ReplayRefused(Exception):
    """The failed event cannot be replayed now; the message says why."""


def replay(failed_event: FailedEvent, user: Any = None) -> None:
    """Send one failed event again to its consumer only.

    The status flip is a conditional update, so a double click replays once.
    """
    consumer: Consumer = failed_event.consumer
    if not consumer.topics.filter(pk=failed_event.topic_id).exists():
        raise ReplayRefused(f"consumer {consumer.name!r} no longer subscribes to {failed_event.topic.name!r}")
    replayable = [Status.FAILED, Status.FAILED_AGAIN]
    flipped = FailedEvent.objects.filter(pk=failed_event.pk, status__in=replayable).update(
        status=Status.REPLAYING,
        replayed_by=user if user is not None and user.is_authenticated else None,
        replayed_at=timezone.now(),
        replay_count=F("replay_count") + 1,
    )
    if not flipped:
        raise ReplayRefused(
            f"failed event {failed_event.pk} is {failed_event.get_status_display().lower()}, not replayable"
        )
    try:
        schedule_replay(
            get_redis(),
            consumer.name,
            failed_event.topic.name,
            failed_event.event,
            failed_event.pk,
            failed_event.stream_id,
        )
    except Exception:
        # Nothing was queued: put the row back so the operator can try again.
        FailedEvent.objects.filter(pk=failed_event.pk).update(status=failed_event.status)
        raise


def replay_many(rows: QuerySet[FailedEvent] | Iterable[FailedEvent], user: Any = None) -> tuple[int, list[str]]:
    """Replay every replayable row; return how many went and why others did not."""
    sent, problems = 0, []
    for row in rows:
        try:
            replay(row, user)
        except ReplayRefused as exc:
            problems.append(str(exc))
        else:
            sent += 1
    return sent, problems


def discard(rows: QuerySet[FailedEvent]) -> int:
    return rows.exclude(status__in=[Status.RESOLVED, Status.DISCARDED, Status.REPLAYING]).update(
        status=Status.DISCARDED
    )
