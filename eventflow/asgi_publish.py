"""A thin ASGI path for ``POST <prefix>topics/<topic>/events``, in front of Django's stack.

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
from django.db import DatabaseError, connections
from django.http.request import HttpHeaders

from . import conf, keys, tokens, topics
from . import publish_contract as contract
from .connection import acall, get_async_redis
from .errors import PublishError, Unauthorized
from .models import hash_token
from .publishing import STORE_SCRIPT, prepare, unavailable
from .status import arefuse_if_evicting
from .tokens import Identity, require_topic_permission
from .topics import TopicSpec

logger = logging.getLogger(__name__)

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
    """Route publish requests to the thin path; everything else to ``app``.

    ``prefix`` is where the project includes ``eventflow.urls`` (``"/api/v1/"``).
    """

    def __init__(self, app: Any, *, prefix: str) -> None:
        self.app = app
        self.route = re.compile(re.escape("/" + prefix.strip("/") + "/") + r"topics/([^/]+)/events")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = self.route.fullmatch(scope["path"])
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
        answer = await _answer(topic, meta, body, cached=True)
    except (PublishError, DatabaseError) as error:
        if isinstance(error, DatabaseError):
            logger.exception("publish: configuration database unavailable")
        answer = contract.error_answer(error)
    await _send_json(send, answer)


async def _answer(topic: str, meta: dict, body: bytes, *, cached: bool, tries: int = 3) -> contract.Answer:
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


async def _publish(topic: str, identity: Identity, guard: str, meta: dict, body: bytes) -> contract.Answer:
    spec = await _require_topic(topic)
    require_topic_permission(identity, spec.name)
    headers = {name.lower(): value for name, value in HttpHeaders(meta).items()}
    body = contract.checked_body(meta.get("CONTENT_LENGTH"), lambda size: body[:size], headers.get("content-encoding"))
    events = contract.parse_events(meta.get("CONTENT_TYPE", ""), headers, body)
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
    return contract.accepted(batch.result(replies))


async def _store(script_keys: list[str], args: list[Any]) -> Any:
    client = get_async_redis()
    try:
        return await acall(client, *STORE_SCRIPT.command(script_keys, args))
    except redis.exceptions.NoScriptError:
        return await acall(client, "EVAL", STORE_SCRIPT.source, len(script_keys), *script_keys, *args)


# --- the token check, cached ----------------------------------------------------


async def _identity(authorization: str | None, topic: str, cached: bool) -> tuple[Identity, str]:
    digest = _digest(authorization)
    if cached and digest is not None:
        hit = _cache.get((digest, topic))
        if hit is not None and hit[2] > time.monotonic():
            if tokens.touch_due(hit[0].id):  # the same cadence as ``tokens.authenticate``
                await _in_database(tokens.touch, hit[0].id)
            return hit[0], hit[1]
    guard = await _generation(topic)  # read before the database, so a change after it is seen
    identity = await _in_database(tokens.authenticate, authorization)
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
    try:
        return hash_token(contract.bearer_token(authorization))
    except Unauthorized:
        return None


async def _generation(topic: str) -> str:
    if not contract.is_topic_name(topic):
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


async def _require_topic(name: str) -> TopicSpec:
    spec = topics.peek(name)
    if spec is not None and spec.active:
        return spec
    return await _in_database(contract.named_topic, name)


async def _in_database(func: Any, *args: Any) -> Any:
    """Run a database step in Django's thread, on a connection that works.

    Django's request cycle closes broken connections (``close_old_connections``
    on request start and finish); this path bypasses it, so it does the same
    here. After a database restart the first use of the old connection fails:
    the connection is dropped and the step, a read, runs once more on a new one.
    """
    return await sync_to_async(_with_working_connection)(func, *args)


def _with_working_connection(func: Any, *args: Any) -> Any:
    _reset_connections(broken=False)
    try:
        return func(*args)
    except DatabaseError as exc:
        logger.warning("publish: database error (%s); retrying on a new connection", exc)
        _reset_connections(broken=True)
    return func(*args)


def _reset_connections(*, broken: bool) -> None:
    """Close unusable connections (all of them after an error), never inside a caller's transaction.

    A healthy connection stays open whatever ``CONN_MAX_AGE`` says: this path
    has no request end to close it at, and reopening per token check would cost more.
    """
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        if broken:
            connection.close()
        elif connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()


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


async def _send_json(send: Any, answer: contract.Answer) -> None:
    body = orjson.dumps(answer.payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers + _SECURITY_HEADERS})
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
