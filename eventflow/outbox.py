"""Publishing inside Django transactions: on commit, or through a transactional outbox.

``publish(..., on_commit=True)`` checks the event now (a bad one raises at
once) and stores it in Redis when the surrounding transaction commits; a
rollback drops it. Between the commit and the store a crash (or Redis being
down) loses it: the transaction is committed, the event is not.

``publish(..., outbox=True)`` closes that gap: the event is written as an
``OutboxEvent`` row inside the caller's transaction. After the commit it is
stored at once and its row deleted; if the process dies in between or Redis
is unreachable, the row stays, and every worker's ``drain()`` (run with the
retention step) stores it later. So the event is published if and only if the
transaction commits, at least once; its id and time are fixed when the row is
written, so a row stored twice (a drain racing the commit hook) is stored once
by the dedup window.

Outside a transaction both behave as a plain ``publish()`` (Django runs
``on_commit`` callbacks at once in autocommit mode).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import groupby

from django.db import transaction

from . import conf
from .errors import BrokerUnavailable, PublishError
from .models import OutboxEvent
from .validation import new_event_ids, now_rfc3339

logger = logging.getLogger(__name__)


def fixed(attributes: list[dict]) -> list[dict]:
    """The events with their id and time decided now, so a later store cannot change them."""
    now, fresh = now_rfc3339(), new_event_ids(len(attributes))
    return [{**raw, "id": raw.get("id") or fresh[i], "time": raw.get("time") or now} for i, raw in enumerate(attributes)]


def on_commit(topic: str, attributes: list[dict], *, source: str) -> list[str]:
    """Check the events now; store them when the current transaction commits. Return their ids."""
    from .publishing import prepare, require_topic, store

    events = fixed(attributes)
    prepare(require_topic(topic), events, source=source)  # refuse a bad event now, not after the commit
    transaction.on_commit(lambda: store(require_topic(topic), events, source=source))
    return [e["id"] for e in events]


def write(topic: str, attributes: list[dict], *, source: str) -> list[str]:
    """Write the events to the outbox in the current transaction; return their ids.

    After the commit they are stored at once; what that misses, ``drain()`` stores.
    """
    from .publishing import prepare, require_topic

    events = fixed(attributes)
    prepare(require_topic(topic), events, source=source)
    rows = OutboxEvent.objects.bulk_create(OutboxEvent(topic=topic, source=source, attributes=e) for e in events)
    pks = [row.pk for row in rows]
    transaction.on_commit(lambda: _publish_now(pks), robust=True)
    return [e["id"] for e in events]


def _publish_now(pks: list[int]) -> None:
    try:
        drain(OutboxEvent.objects.filter(pk__in=pks))
    except BrokerUnavailable as exc:
        logger.warning("outbox: %s events wait for a worker to publish them (%s)", len(pks), exc)


def drain(rows: Iterable[OutboxEvent] | None = None, limit: int = 500) -> int:
    """Store committed outbox rows in Redis, oldest first, deleting each stored row; return how many.

    Raises ``BrokerUnavailable`` (rows kept) when Redis is unreachable. A row
    that can never be stored (its topic deleted, its event now refused) keeps
    the reason in ``last_error`` and is skipped from then on.
    """
    from .publishing import require_topic, store

    if rows is None:
        rows = OutboxEvent.objects.filter(last_error="").order_by("pk")[:limit]
    stored = 0
    for (topic, source), group in groupby(list(rows), key=lambda row: (row.topic, row.source)):
        for chunk in _chunks(list(group), conf.get("MAX_BATCH_EVENTS")):
            pks = [row.pk for row in chunk]
            try:
                store(require_topic(topic), [row.attributes for row in chunk], source=source)
            except BrokerUnavailable:
                raise
            except PublishError as exc:
                logger.error("outbox: events %s for %r cannot be published: %s", pks, topic, exc)
                OutboxEvent.objects.filter(pk__in=pks).update(last_error=str(exc)[:2000])
                continue
            OutboxEvent.objects.filter(pk__in=pks).delete()
            stored += len(chunk)
    return stored


def _chunks(rows: list[OutboxEvent], size: int) -> Iterable[list[OutboxEvent]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
