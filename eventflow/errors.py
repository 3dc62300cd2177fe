"""The exceptions EventFlow raises, each carrying the HTTP answer it stands for.

EventFlowError
└── PublishError            (code, status, message)
    ├── MalformedRequest        400  bad JSON, not UTF-8, empty body
    ├── Unauthorized            401  missing, unknown or revoked token
    ├── Forbidden               403  topic not allowed or inactive
    ├── UnknownTopic            404
    ├── UnknownConsumer         404
    ├── NotFound                404  e.g. no such replay job
    ├── Conflict                409  e.g. a finished replay cannot be cancelled
    ├── TooLarge                413  event, body or batch over its limit
    ├── UnsupportedMediaType    415
    ├── InvalidEvent            422  well-formed but invalid event
    └── BrokerUnavailable       503  Redis unreachable; nothing accepted
"""

from __future__ import annotations


class EventFlowError(Exception):
    """Base class of every EventFlow error."""


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
