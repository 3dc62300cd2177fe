"""Looking into one topic's stream: its newest events, one event, and where that event
stands with each subscribed consumer (the dashboard's live tail and event page).

Callers name topics and consumers as operators see them; the keys use their
Redis identities (``topics.stream_name``, ``Consumer.group_name``).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from . import keys
from .delivery import decode_entry
from .monitor import groups_by_name, pipelined
from .stream_ids import id_order
from .topics import stream_name


def read_tail(client: redis.Redis, topic: str, after: str | None, limit: int) -> tuple[list[tuple[str, dict]], str]:
    """The newest events after stream id ``after`` (newest first, at most ``limit``).

    Returns the events and the id to continue from. With ``after=None`` it
    starts at the newest events.
    """
    low = "-" if after is None else f"({after}"
    entries = client.xrevrange(keys.stream(stream_name(topic)), max="+", min=low, count=limit)
    # One door for decoding: an entry another program wrote (or a truncated one) shows as
    # an "eventflow.unreadable" placeholder instead of breaking the tail of the whole topic.
    events = [(sid.decode(), decode_entry(topic, sid, fields).envelope) for sid, fields in entries if fields]
    cursor = entries[0][0].decode() if entries else after
    return events, cursor or "0-0"


def published_total(client: redis.Redis, topic: str) -> int:
    return int(client.hget(keys.counters(stream_name(topic)), "published") or 0)


def find_event(client: redis.Redis, topic: str, stream_id: str) -> dict | None:
    entries = client.xrange(keys.stream(stream_name(topic)), min=stream_id, max=stream_id, count=1)
    return decode_entry(topic, entries[0][0], entries[0][1]).envelope if entries and entries[0][1] else None


def delivery_matrix(client: redis.Redis, topic: str, stream_id: str, event_id: str, consumers: list[str]) -> list[dict]:
    """Where one event stands with every subscribed consumer.

    ``state`` is one of: acked, pending (with idle seconds and delivery count),
    retrying (waiting in the retry schedule), failed (a FailedEvent row, with
    its status), not yet delivered.
    """
    from .models import Consumer, FailedEvent

    stream = stream_name(topic)
    group_of = dict(Consumer.objects.filter(name__in=consumers).values_list("name", "group_name"))
    rows = dict(
        FailedEvent.objects.filter(topic__name=topic, event_id=event_id, consumer__name__in=consumers).values_list(
            "consumer__name", "status"
        )
    )
    groups = groups_by_name(pipelined(client, [("xinfo_groups", (keys.stream(stream),))])[0])
    commands: list[tuple[str, tuple]] = []
    for consumer in consumers:
        group = group_of.get(consumer, consumer)
        commands.append(("xpending_range", (keys.stream(stream), keys.group(group), stream_id, stream_id, 1)))
        commands.append(("zscore", (keys.retry_schedule(stream, group), stream_id)))
    replies = pipelined(client, commands)
    matrix = []
    for i, consumer in enumerate(consumers):
        pending, retry_due = replies[2 * i], replies[2 * i + 1]
        group = groups.get(group_of.get(consumer, consumer))
        matrix.append(_delivery_state(consumer, stream_id, group, pending, retry_due, rows))
    return matrix


def _delivery_state(consumer: str, sid: str, group: dict | None, pending: Any, retry_due: Any, rows: dict) -> dict:
    state: dict[str, Any] = {"consumer": consumer}
    if consumer in rows:
        state.update(state="failed", status=rows[consumer])
    elif isinstance(pending, list) and pending:
        entry = pending[0]
        state.update(state="pending", idle=entry["time_since_delivered"] / 1000, deliveries=entry["times_delivered"])
    elif retry_due is not None and not isinstance(retry_due, Exception):
        state.update(state="retrying", due_in=max(0.0, float(retry_due) - time.time()))
    elif group is not None and _id_at_or_before(sid, group.get("last-delivered-id")):
        state.update(state="acked")
    else:
        state.update(state="not yet delivered")
    return state


def _id_at_or_before(sid: str, last: Any) -> bool:
    if last is None:
        return False
    return id_order(sid) <= id_order(last)
