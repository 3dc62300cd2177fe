"""The exceptions EventFlow raises; a ``PublishError`` carries the HTTP answer it stands for.

EventFlowError
├── DeliveryFailed          a handler's attempt failed, already described in words (webhooks)
└── PublishError            (code, status, message)
    ├── MalformedRequest        400  bad JSON, not UTF-8, empty body
    ├── Unauthorized            401  missing, unknown or revoked token
    ├── Forbidden               403  topic not allowed or inactive
    ├── UnknownTopic            404
    ├── UnknownConsumer         404
    ├── NotFound                404  e.g. no such replay job
    ├── Conflict                409  e.g. a finished replay cannot be cancelled
    │   └── ReplayRefused           409  this failed event cannot be replayed now
    ├── TooLarge                413  event, body or batch over its limit
    ├── UnsupportedMediaType    415
    ├── InvalidEvent            422  well-formed but invalid event
    ├── RateLimited             429  over the producer's events-per-second limit
    └── BrokerUnavailable       503  Redis unreachable; nothing accepted
        ├── RedisFull               503  Redis answered OOM: at maxmemory, refusing writes
        └── RedisEvicting           503  Redis may evict keys (maxmemory-policy is not noeviction)

``broker_error(exc)`` turns a Redis client error into the ``BrokerUnavailable``
it stands for; every publish path (the Django view, the thin ASGI path,
``publish()``) answers through it, so they say the same thing.
"""

from __future__ import annotations

import redis


class EventFlowError(Exception):
    """Base class of every EventFlow error."""


class DeliveryFailed(EventFlowError):
    """A failed attempt its handler has already described in words.

    ``str(exc)`` becomes the failed event's error as it stands, and ``details``
    takes the place of a traceback (a webhook's answer says more than our stack).
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class PublishError(EventFlowError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.index is not None:
            error["index"] = self.index
        return {"error": error}


class MalformedRequest(PublishError):
    status = 400
    code = "malformed_request"


class Unauthorized(PublishError):
    status = 401
    code = "unauthorized"


class Forbidden(PublishError):
    status = 403
    code = "forbidden"


class UnknownTopic(PublishError):
    status = 404
    code = "unknown_topic"


class UnknownConsumer(PublishError):
    status = 404
    code = "unknown_consumer"


class NotFound(PublishError):
    status = 404
    code = "not_found"


class Conflict(PublishError):
    status = 409
    code = "conflict"


class ReplayRefused(Conflict):
    """The failed event cannot be replayed now; the message says why."""

    code = "not_replayable"


class TooLarge(PublishError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(PublishError):
    status = 415
    code = "unsupported_media_type"


class InvalidEvent(PublishError):
    status = 422
    code = "invalid_event"

    def __init__(self, message: str, *, index: int | None = None, code: str | None = None) -> None:
        if index is not None:
            message = f"event {index}: {message}"
        super().__init__(message, code=code, index=index)


class RateLimited(PublishError):
    status = 429
    code = "rate_limited"


class BrokerUnavailable(PublishError):
    status = 503
    code = "broker_unavailable"


class RedisFull(BrokerUnavailable):
    """Redis is at ``maxmemory`` with ``noeviction``: it refuses writes until memory is freed."""

    code = "redis_full"


class RedisEvicting(BrokerUnavailable):
    """Redis may evict keys: an accepted event could vanish, so nothing is accepted."""

    code = "redis_evicting"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for Redis's OOM refusal, also when it comes wrapped in a script's error."""
    return isinstance(exc, redis.exceptions.OutOfMemoryError) or "command not allowed when used memory" in str(exc)


def broker_error(exc: BaseException) -> BrokerUnavailable:
    """The 503 a failed store deserves: "Redis is full" for OOM, "unreachable" for the rest."""
    if is_out_of_memory(exc):
        return RedisFull(
            "Redis is full (its used memory reached maxmemory) and refuses new events; nothing was accepted. "
            "Retry later: memory must be freed or maxmemory raised."
        )
    return BrokerUnavailable(f"the event store is unreachable ({type(exc).__name__}); nothing was accepted")
