"""Producer authentication by bearer token (only the token's hash is stored)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from . import keys
from .connection import get_redis
from .errors import BrokerUnavailable, Forbidden, RateLimited, Unauthorized
from .models import Producer, hash_token
from .publish_contract import bearer_token

logger = logging.getLogger(__name__)

# Write "last seen" at most this often per producer and process.
LAST_SEEN_EVERY = 30.0
# The longest a publish waits for the "last seen" write (a write-locked database skips it).
LAST_SEEN_WAIT_MS = 200
_last_seen_written: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class Identity:
    id: int
    name: str
    topics: frozenset[str]
    max_events_per_second: int | None = None


def authenticate(authorization: str | None) -> Identity:
    """Return the producer behind an ``Authorization: Bearer`` header, or raise 401."""
    token = bearer_token(authorization)
    digest = hash_token(token)
    producer = Producer.objects.filter(token_hash=digest).prefetch_related("topics").first()
    # The lookup is by hash, so timing reveals nothing about the token; compare anyway.
    if producer is None or not hmac.compare_digest(producer.token_hash, digest):
        raise Unauthorized("unknown token", code="invalid_token")
    if producer.is_revoked:
        raise Unauthorized("this token has been revoked", code="revoked_token")
    touch(producer.pk)
    topics = frozenset(t.name for t in producer.topics.all())
    return Identity(producer.pk, producer.name, topics, producer.max_events_per_second)


def require_topic_permission(identity: Identity, topic: str) -> None:
    if topic not in identity.topics:
        raise Forbidden(f"producer {identity.name!r} may not publish to {topic!r}", code="topic_not_allowed")


def spend_rate(identity: Identity, events: int) -> None:
    """Count ``events`` against the producer's per-second limit; raise 429 past it.

    A refused request takes its events back, so it does not eat the next one's room.
    """
    limit = identity.max_events_per_second
    if not limit:
        return
    key = keys.rate_window(identity.name, int(time.time()))
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incrby(key, events)
        pipe.expire(key, 2)
        used = pipe.execute()[0]
        if used > limit:
            get_redis().decrby(key, events)
    except redis.RedisError as exc:
        raise BrokerUnavailable("the event store is unreachable; nothing was accepted") from exc
    if used > limit:
        raise RateLimited(f"producer {identity.name!r} is over its limit of {limit} events per second; retry shortly")


def touch_due(producer_id: int) -> bool:
    """True if this process has not written the producer's "last seen" within ``LAST_SEEN_EVERY``."""
    return time.monotonic() - _last_seen_written.get(producer_id, -LAST_SEEN_EVERY) >= LAST_SEEN_EVERY


def touch(producer_id: int) -> None:
    """Record that the producer was seen: best effort, throttled, never holding a publish for long.

    At most one write per ``LAST_SEEN_EVERY`` per producer and process, and it
    waits at most ``LAST_SEEN_WAIT_MS`` for a lock: a database busy with a long
    write makes "last seen" a little stale, not the publish slow.
    """
    if not touch_due(producer_id):
        return
    _last_seen_written[producer_id] = time.monotonic()
    try:
        with _brief_write():
            Producer.objects.filter(pk=producer_id).update(last_seen_at=timezone.now())
    except DatabaseError as exc:
        logger.info("producer %s: 'last seen' not written (%s)", producer_id, exc)


@contextmanager
def _brief_write() -> Iterator[None]:
    """A transaction whose lock waits end after ``LAST_SEEN_WAIT_MS`` (SQLite and PostgreSQL)."""
    if connection.vendor == "sqlite":  # the busy timeout must be short before BEGIN IMMEDIATE waits
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            previous = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA busy_timeout = {LAST_SEEN_WAIT_MS}")
        try:
            with transaction.atomic():
                yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {previous}")
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LAST_SEEN_WAIT_MS}ms'")
        yield
        if connection.vendor == "postgresql":  # inside a caller's transaction, wait as long as before
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
