"""The publish contract, once: what both front doors check, answer and refuse.

``api.publish_events`` (the Django view) and ``asgi_publish`` (the thin ASGI
path) are each only framework glue around these functions, so they cannot
drift apart: the bearer header's form, the topic-name check, the body limits
(and gzip), the 202 payload, and one error mapping (status, JSON, Retry-After)
for every refusal, including the database being down.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from . import conf, ingest
from .errors import (
    BrokerUnavailable,
    MalformedRequest,
    PublishError,
    RateLimited,
    TooLarge,
    Unauthorized,
    UnknownTopic,
    UnsupportedMediaType,
)
from .models import NAME_PATTERN
from .publishing import require_topic
from .topics import TopicSpec

TOPIC_NAME = re.compile(NAME_PATTERN)
MAX_TOKEN_CHARS = 200
DATABASE_DOWN = "the configuration database is unavailable; nothing was accepted"
# Content codings a producer may send the body in; anything else is refused with 415.
ENCODINGS = ("identity", "gzip")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer in framework-neutral form."""

    status: int
    payload: dict
    headers: dict[str, str]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or raise 401 saying what is wrong."""
    if not authorization:
        raise Unauthorized("missing Authorization header (use 'Bearer <producer token>')", code="missing_token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <producer token>'", code="missing_token")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("unknown token", code="invalid_token")
    return token


def is_topic_name(name: str) -> bool:
    """True if some topic could have ``name`` (checked before any database or cache lookup)."""
    return TOPIC_NAME.fullmatch(name) is not None


def check_topic_name(name: str) -> None:
    """Refuse a name no topic can have with the 404 an unknown topic gets."""
    if not is_topic_name(name):
        raise UnknownTopic(f"no topic named {name[:100]!r}")


def named_topic(name: str) -> TopicSpec:
    """The active topic called ``name``, or the 404/403 the contract answers."""
    check_topic_name(name)
    return require_topic(name)


def checked_body(declared: str | None, read: Callable[[int], bytes], encoding: str | None = None) -> bytes:
    """The request body, within ``EVENTFLOW_MAX_BODY_BYTES``, decoded from its content coding.

    ``declared`` is the Content-Length header; ``read(n)`` returns at most ``n``
    bytes of the body. A gzip body is inflated up to the same limit, so a small
    compressed body cannot expand past it (a zip bomb is refused with 413).
    """
    limit = conf.get("MAX_BODY_BYTES")
    declared = declared or "0"
    if not declared.isdigit():
        raise MalformedRequest("Content-Length is not a number")
    if int(declared) > limit:
        raise TooLarge(f"the body of {declared} bytes is over the limit of {limit} bytes")
    body = read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"the body is over the limit of {limit} bytes")
    return _decoded(body, (encoding or "identity").strip().lower(), limit)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:40]!r} is not supported; send the body as it is or gzip it",
            code="unsupported_encoding",
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit + 1)
        complete = inflater.eof and not inflater.unconsumed_tail
    except zlib.error as exc:
        raise MalformedRequest(f"the gzip body cannot be decompressed ({exc})", code="malformed_gzip") from None
    if len(inflated) > limit:
        raise TooLarge(f"the decompressed body is over the limit of {limit} bytes")
    if not complete:
        raise MalformedRequest("the gzip body is truncated", code="malformed_gzip")
    return inflated


def parse_events(content_type: str, headers: Mapping[str, str], body: bytes) -> list[dict]:
    """The request's events (``headers``: lowercased names), within the batch limit."""
    return ingest.parse(content_type, headers, body, max_events=conf.get("MAX_BATCH_EVENTS"))


def accepted(result: Any) -> Answer:
    """The 202 answer for a stored ``PublishResult``: new events counted, repeats listed."""
    payload: dict[str, Any] = {"accepted": result.accepted - len(result.duplicates), "ids": result.ids}
    if result.duplicates:
        payload["duplicates"] = result.duplicates
    return Answer(202, payload, {})


def error_answer(error: Exception) -> Answer:
    """The one mapping from a refusal to its answer; raise ``error`` again if it is not one.

    A ``PublishError`` answers its own status and JSON; the configuration
    database being down is a 503 like Redis being down. 503 and 429 carry
    ``Retry-After``.
    """
    if isinstance(error, DatabaseError):
        error = BrokerUnavailable(DATABASE_DOWN)
    if not isinstance(error, PublishError):
        raise error
    headers = {}
    if error.status == 503:
        headers["Retry-After"] = str(conf.get("RETRY_AFTER_SECONDS"))
    elif isinstance(error, RateLimited):
        headers["Retry-After"] = "1"  # limits count per wall-clock second
    return Answer(error.status, error.as_dict(), headers)
