"""Producer authentication by bearer token (only the token's hash is stored)."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import redis
from django.utils import timezone

from . import keys
from .connection import get_redis
from .errors import BrokerUnavailable, Forbidden, RateLimited, Unauthorized
from .models import Producer, hash_token

# Write "last seen" at most this often per producer and process.
_LAST_SEEN_EVERY = 30.0
_last_seen_written: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class Identity:
    id: int
    name: str
    topics: frozenset[str]
    max_events_per_second: int | None = None


def authenticate(authorization: str | None) -> Identity:
    """Return the producer behind an ``Authorization: Bearer`` header, or raise 401."""
    if not authorization:
        raise Unauthorized("missing Authorization header (use 'Bearer <producer token>')", code="missing_token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <producer token>'", code="missing_token")
    if len(token) > 200:
        raise Unauthorized("unknown token", code="invalid_token")
    digest = hash_token(token)
    producer = Producer.objects.filter(token_hash=digest).prefetch_related("topics").first()
    # The lookup is by hash, so timing reveals nothing about the token; compare anyway.
    if producer is None or not hmac.compare_digest(producer.token_hash, digest):
        raise Unauthorized("unknown token", code="invalid_token")
    if producer.is_revoked:
        raise Unauthorized("this token has been revoked", code="revoked_token")
    _touch(producer.pk)
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


def _touch(producer_id: int) -> None:
    now = time.monotonic()
    if now - _last_seen_written.get(producer_id, -_LAST_SEEN_EVERY) >= _LAST_SEEN_EVERY:
        _last_seen_written[producer_id] = now
        Producer.objects.filter(pk=producer_id).update(last_seen_at=timezone.now())
