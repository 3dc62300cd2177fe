"""Dead letters: recording events a consumer gave up on, and replaying them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import redis
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import keys
from .connection import get_redis
from .delivery import Delivery, queue_replay
from .errors import ReplayRefused
from .models import Consumer, FailedEvent, Topic

Status = FailedEvent.Status


def record(consumer_id: int, delivery: Delivery, error: str, traceback: str) -> None:
    """Write (or update) the FailedEvent row for one delivery out of attempts."""
    record_many(consumer_id, [(delivery, error, traceback)])


def record_many(consumer_id: int, failed: Iterable[tuple[Delivery, str, str]]) -> None:
    """Write (or update) the FailedEvent rows for deliveries out of attempts, in one transaction.

    ``failed`` holds (delivery, error, traceback). Idempotent per (consumer,
    topic, event id): a worker that dies after writing the rows and before
    acking cannot create second ones. One transaction per batch, not per row:
    a burst of dead letters costs one commit, so it cannot hold up the retries
    waiting behind it.
    """
    now = timezone.now()
    again = [(d, error, tb) for d, error, tb in failed if d.failed_event is not None]
    rows = _new_rows(consumer_id, [(d, error, tb) for d, error, tb in failed if d.failed_event is None], now)
    with transaction.atomic():
        for delivery, error, traceback in again:
            FailedEvent.objects.filter(pk=delivery.failed_event).update(
                status=Status.FAILED_AGAIN,
                error=error,
                traceback=traceback,
                attempts=F("attempts") + delivery.attempt,
                last_failed_at=now,
            )
        if rows:
            FailedEvent.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["consumer", "topic", "event_id"],
                update_fields=[
                    "stream_id",
                    "event_type",
                    "event",
                    "error",
                    "traceback",
                    "attempts",
                    "last_failed_at",
                    "status",
                ],
            )


def _new_rows(consumer_id: int, failed: list[tuple[Delivery, str, str]], now: Any) -> list[FailedEvent]:
    # ``Delivery.topic`` is the topic's Redis identity (its stream), not its current name.
    streams = {d.topic for d, _, _ in failed}
    topic_ids = dict(Topic.objects.filter(stream_name__in=streams).values_list("stream_name", "pk"))
    rows: dict[tuple[int, str], FailedEvent] = {}  # one per key: an upsert may touch a row only once
    for delivery, error, traceback in failed:
        topic_id = topic_ids.get(delivery.topic)
        if topic_id is None:
            continue  # the topic was deleted; its failed events went with it
        envelope = delivery.envelope
        event_id = str(envelope.get("id", ""))[:200]
        rows[(topic_id, event_id)] = FailedEvent(
            consumer_id=consumer_id,
            topic_id=topic_id,
            event_id=event_id,
            stream_id=delivery.stream_id,
            event_type=str(envelope.get("type", ""))[:200],
            event=envelope,
            error=error,
            traceback=traceback,
            attempts=delivery.attempt,
            first_failed_at=now,
            last_failed_at=now,
            status=Status.FAILED,
        )
    return list(rows.values())


def resolve(failed_event_id: int) -> None:
    """A replayed event was handled: the row is done."""
    resolve_many([failed_event_id])


def resolve_many(failed_event_ids: Iterable[int]) -> None:
    """Replayed events were handled: their rows are done."""
    FailedEvent.objects.filter(pk__in=list(failed_event_ids)).update(
        status=Status.RESOLVED, resolved_at=timezone.now()
    )


# --- the dead-letter outbox ---------------------------------------------------------------


def drain_outbox(client: redis.Redis, consumer_id: int, consumer: str, topics: Iterable[str], limit: int = 500) -> int:
    """Write a consumer's parked dead letters and replay resolutions to the database; return how many.

    Workers park them in Redis with the acks that release their events
    (``Settlement.dead_letter``), so a database that is down cannot drop the
    acks or lose the dead letter. An entry is removed only after its rows
    committed; one drained twice (two workers, or a crash before the removal)
    is written once, as ``record_many`` upserts. Database errors are raised,
    and the entries stay for the next drain.
    """
    drained = 0
    for topic in topics:
        outbox = keys.dead_letters(topic, consumer)
        _, entries = client.hscan(outbox, 0, count=limit)
        if not entries:
            continue
        _write_parked(consumer_id, topic, entries.values())
        client.hdel(outbox, *entries)
        drained += len(entries)
    return drained


def _write_parked(consumer_id: int, topic: str, raw_entries: Iterable[bytes]) -> None:
    dead, resolved = [], []
    for raw in raw_entries:
        entry = orjson.loads(raw)
        if "resolve" in entry:
            resolved.append(entry["resolve"])
            continue
        parked = Delivery(
            topic=topic,
            envelope=entry["e"],
            attempt=entry["attempt"],
            stream_id=entry.get("stream_id", ""),
            member=entry.get("member", ""),
            failed_event=entry.get("failed_event"),
        )
        dead.append((parked, entry.get("error", ""), entry.get("traceback", "")))
    try:
        with transaction.atomic():
            if dead:
                record_many(consumer_id, dead)
            if resolved:
                resolve_many(resolved)
    except (OperationalError, InterfaceError):
        raise  # the database is down: every entry waits for it
    except DatabaseError:
        # One entry the database cannot store (e.g. a NUL in JSON text on PostgreSQL)
        # must not hold up the others: write them one by one.
        _write_one_by_one(consumer_id, dead, resolved)


def _write_one_by_one(consumer_id: int, dead: list[tuple[Delivery, str, str]], resolved: list[int]) -> None:
    if resolved:
        resolve_many(resolved)
    for delivery, error, traceback in dead:
        try:
            with transaction.atomic():
                record_many(consumer_id, [(delivery, error, traceback)])
        except (OperationalError, InterfaceError):
            raise
        except DatabaseError as exc:
            stored = dataclasses.replace(delivery, envelope=_storable(delivery.envelope))
            record_many(consumer_id, [(stored, f"{error} [event kept as text: {exc}]"[:2000], traceback)])


def _storable(envelope: dict) -> dict:
    """The envelope's identity, and the rest as JSON text with NUL spelled out."""
    text = orjson.dumps(envelope).decode()  # JSON escapes NUL as the six characters \u0000: storable
    return {key: str(envelope.get(key, ""))[:200].replace("\x00", "") for key in ("id", "type", "source")} | {
        "unstorable": text[:100_000]
    }


_CHUNK = 500


def replay(failed_event: FailedEvent, user: Any = None) -> None:
    """Send one failed event again to its consumer only, or raise ReplayRefused."""
    sent, problems = replay_many([failed_event], user)
    if not sent:
        raise ReplayRefused(problems[0] if problems else f"failed event {failed_event.pk} is gone")


def replay_many(
    rows: QuerySet[FailedEvent] | Iterable[FailedEvent],
    user: Any = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, list[str]]:
    """Replay every replayable row to its own consumer; return how many went and why others did not.

    Works in chunks: one conditional UPDATE flips a chunk to ``replaying`` (so
    a double click replays once), one pipeline queues it in Redis.
    ``progress(sent_so_far)`` is called after each chunk.
    """
    pks = list(rows.values_list("pk", flat=True)) if isinstance(rows, QuerySet) else [row.pk for row in rows]
    subscribed = set(Consumer.topics.through.objects.values_list("consumer_id", "topic_id"))
    by = user if user is not None and user.is_authenticated else None
    sent, problems = 0, []
    for start in range(0, len(pks), _CHUNK):
        chunk_sent, chunk_problems = _replay_chunk(pks[start : start + _CHUNK], subscribed, by)
        sent += chunk_sent
        problems += chunk_problems
        if progress is not None:
            progress(sent)
    return sent, problems


def _replay_chunk(pks: list[int], subscribed: set[tuple[int, int]], by: Any) -> tuple[int, list[str]]:
    rows = FailedEvent.objects.filter(pk__in=pks).select_related("consumer", "topic")
    eligible, problems = [], []
    for row in rows:
        if not row.is_replayable:
            problems.append(f"failed event {row.pk} is {row.get_status_display().lower()}, not replayable")
        elif (row.consumer_id, row.topic_id) not in subscribed:
            problems.append(f"consumer {row.consumer.name!r} no longer subscribes to {row.topic.name!r}")
        else:
            eligible.append(row)
    marker = timezone.now()  # tells the rows this call flipped from any a concurrent call did
    FailedEvent.objects.replayable().filter(pk__in=[row.pk for row in eligible]).update(
        status=Status.REPLAYING, replayed_by=by, replayed_at=marker, replay_count=F("replay_count") + 1
    )
    flipped = set(
        FailedEvent.objects.filter(
            pk__in=[row.pk for row in eligible], status=Status.REPLAYING, replayed_at=marker
        ).values_list("pk", flat=True)
    )
    mine = [row for row in eligible if row.pk in flipped]
    problems += [f"failed event {row.pk} is already replaying" for row in eligible if row.pk not in flipped]
    try:
        pipe = get_redis().pipeline(transaction=False)
        for row in mine:
            queue_replay(pipe, row.consumer.group_name, row.topic.stream_name, row.event, row.pk, row.stream_id)
        pipe.execute()
    except Exception:  # noqa: BLE001 - whatever stopped the pipeline, it queued nothing
        # Nothing was queued: put the rows back so the operator can try again, then re-raise.
        for row in mine:
            FailedEvent.objects.filter(pk=row.pk).update(status=row.status, replay_count=row.replay_count)
        raise
    return len(mine), problems


def discard(rows: QuerySet[FailedEvent]) -> int:
    """Mark the replayable ones of ``rows`` discarded; return how many."""
    return rows.replayable().update(status=Status.DISCARDED)
