"""Edit before replay: an operator corrects a failed event's data and sends the corrected copy to its consumer only.

The original is immutable: the event stays as it was in the topic's stream and
in its FailedEvent row (``event``); the corrected copy is a ``FailedEventEdit``
linked to both. Who may: ``permissions.can_edit_and_replay``, a permission of its own,
apart from replaying. The API and the dashboard share two steps:

1. ``plan(row, data)`` checks the edit and changes nothing: the row is
   replayable and its consumer still subscribes to the topic; its envelope
   holds JSON data (not an unreadable entry, not binary data); the corrected
   copy passes what publishing checks (``validation.seal``: the topic's JSON
   Schema, run on RE2, and its size limit); and something changed. The plan
   holds the copy and its diff (``diff``: each changed path, old and new).
2. ``send(plan, user, reason)`` makes it a replay job of one event (source
   ``edit``). One database transaction flips the row to replaying and writes
   the job and the edit; inside it, one Redis transaction queues the copy in
   the lane's retry schedule as the job's only event (member
   ``rp:<job>:f<row>``, carrying the job's id: ``event.replay`` in Python, the
   ``EventFlow-Replay`` header on webhooks) and opens the job's progress as
   all fed. From there it is any replay job: the worker's tally counts how the
   delivery ended, the feeder ends the job (it never feeds it: it is fed),
   a cancel takes the copy back, and the event detail lists it
   (``replays.sent_again``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import orjson
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import keys, replays, topics, validation
from .connection import get_redis
from .delivery import UNREADABLE_TYPE
from .errors import Conflict, InvalidEvent, TooLarge
from .models import Consumer, FailedEvent, FailedEventEdit, Replay

MAX_DIFF_ENTRIES = 200  # a diff lists the first ones; ``changes`` counts them all
_BROKER_SET = ("specversion", "source", "topic")  # ``seal`` sets these again


class Change(TypedDict, total=False):
    """One changed place: a JSON Pointer into the envelope, what happened, and the values."""

    path: str
    op: str  # "changed", "added" or "removed"
    old: Any  # absent when added
    new: Any  # absent when removed


def diff(old: Any, new: Any, path: str = "/data") -> Iterator[Change]:
    """The changes from ``old`` to ``new``, deepest first place first: objects by key, arrays by index.

    A value of another JSON type (``1`` and ``1.0``, ``0`` and ``false``) counts as changed.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            where = f"{path}/{_pointer(key)}"
            if key in new:
                yield from diff(value, new[key], where)
            else:
                yield {"path": where, "op": "removed", "old": value}
        for key, value in new.items():
            if key not in old:
                yield {"path": f"{path}/{_pointer(key)}", "op": "added", "new": value}
    elif isinstance(old, list) and isinstance(new, list):
        for index, (before, after) in enumerate(zip(old, new)):
            yield from diff(before, after, f"{path}/{index}")
        for index in range(len(new), len(old)):
            yield {"path": f"{path}/{index}", "op": "removed", "old": old[index]}
        for index in range(len(old), len(new)):
            yield {"path": f"{path}/{index}", "op": "added", "new": new[index]}
    elif type(old) is not type(new) or old != new:
        yield {"path": path, "op": "changed", "old": old, "new": new}


def _pointer(key: str) -> str:
    """An object key as a JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked edit: the corrected copy and what changed."""

    row: FailedEvent
    envelope: dict
    diff: list[Change]
    changes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "failed_event": self.row.pk,
            "consumer": self.row.consumer.name,
            "topic": self.row.topic.name,
            "event_id": self.row.event_id,
            "changes": self.changes,
            "diff": self.diff,
        }


def plan(row: FailedEvent, data: Any) -> Plan:
    """Check ``data`` as the corrected data of ``row``'s event; raise a PublishError naming the problem."""
    _check_replayable(row)
    original = row.event
    _check_editable(original)
    attributes = {name: value for name, value in original.items() if name not in _BROKER_SET}
    attributes["data"] = data
    spec = topics.get_spec(row.topic.name)
    try:
        envelope, _ = validation.seal(attributes, topic=spec, source=str(original.get("source", "")))
    except TooLarge as exc:
        raise TooLarge(f"the corrected event is too large: {exc.message.removeprefix('event 0: ')}") from None
    except InvalidEvent as exc:
        raise InvalidEvent(f"the corrected event {exc.message}", code=exc.code) from None
    listed: list[Change] = []
    changes = 0
    for change in diff(original.get("data"), envelope.get("data")):
        changes += 1
        if changes <= MAX_DIFF_ENTRIES:
            listed.append(change)
    if not changes:
        raise InvalidEvent("the data is unchanged: edit it, or use Replay to send it as it is", code="unchanged")
    return Plan(row=row, envelope=envelope, diff=listed, changes=changes)


def _check_replayable(row: FailedEvent) -> None:
    if not row.is_replayable:
        raise Conflict(
            f"failed event {row.pk} is {row.get_status_display().lower()}, not replayable", code="not_replayable"
        )
    if not Consumer.topics.through.objects.filter(consumer_id=row.consumer_id, topic_id=row.topic_id).exists():
        raise Conflict(
            f"consumer {row.consumer.name!r} no longer subscribes to {row.topic.name!r}", code="not_subscribed"
        )


def _check_editable(envelope: Any) -> None:
    if not isinstance(envelope, dict) or not envelope.get("type"):  # a row written by hand, not by a worker
        raise InvalidEvent("this failed event holds no event envelope to edit", code="not_editable")
    if envelope.get("type") == UNREADABLE_TYPE or "unstorable" in envelope:
        raise InvalidEvent("this failed event holds no readable event to edit", code="not_editable")
    if "data_base64" in envelope:
        raise InvalidEvent("its data is binary (data_base64): only JSON data can be edited", code="not_editable")


def send(checked: Plan, user: Any, reason: str) -> FailedEventEdit:
    """Send the corrected copy to the row's consumer only, as a replay job of one event; return the edit.

    Raise Conflict if the row stopped being replayable meanwhile (a double
    click sends once); a Redis error leaves nothing done (the transaction
    rolls back).
    """
    row = checked.row
    by = user if user is not None and getattr(user, "is_authenticated", False) else None
    now = timezone.now()
    with transaction.atomic():
        flipped = FailedEvent.objects.filter(pk=row.pk, status__in=FailedEvent.REPLAYABLE).update(
            status=FailedEvent.Status.REPLAYING, replayed_by=by, replayed_at=now, replay_count=F("replay_count") + 1
        )
        if not flipped:
            raise Conflict(f"failed event {row.pk} is no longer replayable", code="not_replayable")
        job = Replay.objects.create(
            source=Replay.Source.EDIT,
            consumer=row.consumer,
            topic=row.topic,
            from_id=str(row.pk),
            to_id=str(row.pk),
            cursor=str(row.pk),
            reason=reason,
            matched=1,
            sent=1,
            requested_by=by,
            created_at=now,
            started_at=now,
        )
        edit = FailedEventEdit.objects.create(
            failed_event=row, replay=job, envelope=checked.envelope, diff=checked.diff, changes=checked.changes
        )
        _queue(row, job, checked.envelope)
    replays.audit.info(
        "replay %s: failed event %s edited by %s (%d changes: %s) and sent to %s, reason: %s",
        job.pk, row.pk, by or "-", checked.changes, ", ".join(c["path"] for c in checked.diff[:10]),
        row.consumer.name, reason,
    )  # fmt: skip
    return edit


def _queue(row: FailedEvent, job: Replay, envelope: dict) -> None:
    """The copy in the lane's schedule, and the job's progress as all fed, in one Redis transaction."""
    topic, consumer = row.topic.stream_name, row.consumer.group_name  # their Redis identities
    member = f"{replays.member_prefix(job.pk)}f{row.pk}"
    entry = {"e": envelope, "attempt": 1, "stream_id": row.stream_id, "failed_event": row.pk, "replay": job.pk}
    progress = {"state": "open", "cursor": str(row.pk), "fed": 1, "sent": 1, "handled": 0, "failed": 0}
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(keys.replay_progress(topic, job.pk), mapping=progress)
    pipe.hset(keys.retry_payloads(topic, consumer), member, orjson.dumps(entry))
    pipe.zadd(keys.retry_schedule(topic, consumer), {member: time.time()})
    pipe.execute()
