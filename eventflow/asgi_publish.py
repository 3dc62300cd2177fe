"""A thin ASGI path for ``POST /api/v1/topics/<topic>/events``, in front of Django's stack.

Publishing is the hottest HTTP path, and Django's request stack (middleware,
URL resolving, a thread hop for the sync view, a database query for the
token) costs more than the work itself. This app answers that one route
with exactly the contract of ``api.publish_events`` (same checks, order,
status codes and JSON errors, via the same ``ingest``/``publishing`` code) and
hands every other request to the wrapped application.

Token checks are cached per process, keyed by the token's hash and the topic,
together with the topic's token generation (``keys.auth_generation``), which
every change to a producer bumps. The store script refuses a batch whose
generation moved (STALE), so a revoked token is refused at once: the request
is then re-checked against the database. An error answer from a cached check
is confirmed against the generation first, so errors match the view's too.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from typing import Any

import orjson
import redis
from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.http.request import HttpHeaders

from . import api, conf, ingest, keys, tokens, topics
from .connection import acall, get_async_redis
from .errors import BrokerUnavailable, MalformedRequest, PublishError, TooLarge
from .models import hash_token
from .publishing import _STORE, prepare, unavailable
from .status import arefuse_if_evicting
from .tokens import Identity, require_topic_permission
from .topics import TopicSpec

logger = logging.getLogger(__name__)

ROUTE = re.compile(r"/api/v1/topics/([^/]+)/events")
_CACHE_LIMIT = 10_000
# Even if a bump were lost (Redis down while a producer changed), a check is redone this often.
_CACHE_SECONDS = 30.0
_cache: dict[tuple[str, str], tuple[Identity, str, float]] = {}
# The same headers Django's security middleware adds to every answer.
_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class PublishRouter:
    """Route publish requests to the thin path; everything else to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = ROUTE.fullmatch(scope["path"])
            if match is not None and not conf.get("SYNC"):  # sync mode runs handlers: the view's job
                await publish(match.group(1), scope, receive, send)
                return
        await self.app(scope, receive, send)


def clear_cache(*args: Any, **kwargs: Any) -> None:
    _cache.clear()


async def publish(topic: str, scope: dict, receive: Any, send: Any) -> None:
    meta = _meta(scope)
    body = await _receive_body(receive)
    try:
        status, payload = await _answer(topic, meta, body, cached=True)
    except PublishError as error:
        status, payload = error.status, error.as_dict()
    except DatabaseError:
        logger.exception("publish: configuration database unavailable")
        error = BrokerUnavailable("the configuration database is unavailable; nothing was accepted")
        status, payload = error.status, error.as_dict()
    await _send_json(send, status, payload)


async def _answer(topic: str, meta: dict, body: bytes, *, cached: bool, tries: int = 3) -> tuple[int, dict]:
    """Run the view's steps in the view's order; a stale token check runs them again, fresh."""
    identity, guard = await _identity(meta.get("HTTP_AUTHORIZATION"), topic, cached)
    try:
        return await _publish(topic, identity, guard, meta, body)
    except PublishError as error:
        stale = isinstance(error, _Stale) or (cached and await _generation(topic) != guard)
        if not stale or tries <= 1:
            raise
    _forget(meta.get("HTTP_AUTHORIZATION"), topic)
    return await _answer(topic, meta, body, cached=False, tries=tries - 1)


class _Stale(PublishError):
    status = 503
    code = "broker_unavailable"


async def _publish(topic: str, identity: Identity, guard: str, meta: dict, body: bytes) -> tuple[int, dict]:
    spec = await _require_topic(topic)
    require_topic_permission(identity, spec.name)
    body = _checked_body(meta, body)
    headers = {name.lower(): value for name, value in HttpHeaders(meta).items()}
    events = ingest.parse(meta.get("CONTENT_TYPE", ""), headers, body, max_events=conf.get("MAX_BATCH_EVENTS"))
    if identity.max_events_per_second:  # the view's per-producer limit (429), at the view's step
        await sync_to_async(tokens.spend_rate)(identity, len(events))
    batch = prepare(spec, events, source=identity.name, guard=guard)
    try:
        await arefuse_if_evicting()
        replies = await _store(batch.keys, batch.args)
    except redis.ResponseError as exc:
        if str(exc).startswith("STALE"):
            raise _Stale("the token cache is out of date") from None
        raise unavailable(exc) from exc
    except (redis.RedisError, OSError) as exc:
        raise unavailable(exc) from exc
    result = batch.result(replies)
    payload: dict[str, Any] = {"accepted": result.accepted - len(result.duplicates), "ids": result.ids}
    if result.duplicates:
        payload["duplicates"] = result.duplicates
    return 202, payload


async def _store(script_keys: list[str], args: list[Any]) -> Any:
    client = get_async_redis()
    try:
        return await acall(client, *_STORE.command(script_keys, args))
    except redis.exceptions.NoScriptError:
        return await acall(client, "EVAL", _STORE.source, len(script_keys), *script_keys, *args)


# --- the token check, cached ----------------------------------------------------


async def _identity(authorization: str | None, topic: str, cached: bool) -> tuple[Identity, str]:
    digest = _digest(authorization)
    if cached and digest is not None:
        hit = _cache.get((digest, topic))
        if hit is not None and hit[2] > time.monotonic():
            await _touch(hit[0].id)
            return hit[0], hit[1]
    guard = await _generation(topic)  # read before the database, so a change after it is seen
    identity = await sync_to_async(tokens.authenticate)(authorization)
    if digest is not None:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[(digest, topic)] = (identity, guard, time.monotonic() + _CACHE_SECONDS)
    return identity, guard


def _forget(authorization: str | None, topic: str) -> None:
    digest = _digest(authorization)
    if digest is not None:
        _cache.pop((digest, topic), None)


def _digest(authorization: str | None) -> str | None:
    """The token's hash, when the header is well-formed (else the uncached check says why)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return hash_token(token)


async def _generation(topic: str) -> str:
    if not api._TOPIC_NAME.fullmatch(topic):
        return "0"
    stream = await _stream_name(topic)
    try:
        value = await acall(get_async_redis(), "GET", keys.auth_generation(stream))
    except (redis.RedisError, OSError) as exc:
        raise unavailable(exc) from exc
    return value.decode() if value else "0"


async def _stream_name(topic: str) -> str:
    """The topic's Redis identity (its keys survive renames), from the topic cache when fresh."""
    spec = topics.peek(topic)
    if spec is None:
        return await sync_to_async(topics.stream_name)(topic)
    return spec.stream


async def _touch(producer_id: int) -> None:
    # Same cadence as tokens.authenticate: "last seen" at most every 30 s per process.
    due = time.monotonic() - tokens._last_seen_written.get(producer_id, -tokens._LAST_SEEN_EVERY)
    if due >= tokens._LAST_SEEN_EVERY:
        await sync_to_async(tokens._touch)(producer_id)


async def _require_topic(name: str) -> TopicSpec:
    spec = topics.peek(name)
    if spec is not None and spec.active:
        return spec
    return await sync_to_async(api._require_topic)(name)


# --- bytes in, bytes out ------------------------------------------------------------


def _meta(scope: dict) -> dict[str, str]:
    """The request's headers as Django's ``request.META`` would hold them."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1")
        if "_" in name:
            continue
        if name == "content-length":
            corrected = "CONTENT_LENGTH"
        elif name == "content-type":
            corrected = "CONTENT_TYPE"
        else:
            corrected = "HTTP_" + name.upper().replace("-", "_")
        grouped[corrected].append(raw_value.decode("latin1"))
    return {name: ",".join(values) for name, values in grouped.items()}


async def _receive_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _checked_body(meta: dict, body: bytes) -> bytes:
    limit = conf.get("MAX_BODY_BYTES")
    declared = meta.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise MalformedRequest("Content-Length is not a number")
    if int(declared) > limit:
        raise TooLarge(f"the body of {declared} bytes is over the limit of {limit} bytes")
    body = body[: limit + 1]
    if len(body) > limit:
        raise TooLarge(f"the body is over the limit of {limit} bytes")
    return body


async def _send_json(send: Any, status: int, payload: dict) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", str(conf.get("RETRY_AFTER_SECONDS")).encode()))
    elif status == 429:
        headers.append((b"retry-after", b"1"))  # limits count per wall-clock second, as in api.error_response
    await send({"type": "http.response.start", "status": status, "headers": headers + _SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


def expire_token_checks(*args: Any, **kwargs: Any) -> None:
    """A producer changed: every process's cached token checks are stale (connected in ``signals``).

    Best effort: with Redis down nothing can be published anyway, and cached
    checks expire after ``_CACHE_SECONDS`` regardless.
    """
    from .connection import get_redis
    from .models import Topic

    clear_cache()
    try:
        pipe = get_redis().pipeline(transaction=False)
        for stream in Topic.objects.values_list("stream_name", flat=True):
            pipe.incr(keys.auth_generation(stream))
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("could not expire cached token checks (%s); they expire within %ss", exc, _CACHE_SECONDS)
