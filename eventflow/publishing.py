"""Putting validated events into a topic's stream: the one write path.

A batch is stored by one Lua script, so it is all-or-nothing and costs one
round trip. The script also drops ids the producer already published within
the dedup window and counts what it stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from . import conf, keys, tracing
from .connection import LuaScript, call_many, call_transaction, get_redis
from .errors import BrokerUnavailable, Forbidden, InvalidEvent, TooLarge, UnknownTopic, broker_error
from .status import refuse_if_evicting
from .topics import TopicSpec, get_spec
from .ingest import EMPTY_BATCH
from .validation import from_simple, new_event_ids, now_rfc3339, seal

# KEYS: stream, counters, guard, then one dedup key per event that carries one.
# ARGV: dedup ttl, producer, count, expected guard value ("" = no guard), then per
# event: has-dedup-key ("1"/"0"), payload.
# Returns per event its stream id, or "dup:<original stream id>". A guard (the
# HTTP path's token-cache generation for the topic) that no longer holds
# refuses the whole batch with a STALE error, storing nothing.
# No trimming here: retention.py trims, counting what consumers had not acked.
STORE_SCRIPT = LuaScript(
    """
if ARGV[4] ~= '' and (redis.call('GET', KEYS[3]) or '0') ~= ARGV[4] then
  return redis.error_reply('STALE the token cache is out of date')
end
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local results = {}
local k = 4
local stored = 0
for i = 1, n do
  local has_key = ARGV[3 + 2 * i]
  local payload = ARGV[4 + 2 * i]
  local dedup = nil
  local seen = false
  if has_key == "1" then
    dedup = KEYS[k]
    k = k + 1
    seen = redis.call('GET', dedup)
  end
  if seen then
    results[i] = 'dup:' .. seen
  else
    local id = redis.call('XADD', KEYS[1], '*', 'e', payload)
    if dedup then redis.call('SET', dedup, id, 'EX', ttl) end
    results[i] = id
    stored = stored + 1
  end
end
if stored > 0 then
  redis.call('HINCRBY', KEYS[2], 'published', stored)
  redis.call('HINCRBY', KEYS[2], 'published:' .. ARGV[2], stored)
end
return results
"""
)


@dataclass(slots=True)
class PublishResult:
    ids: list[str]
    stream_ids: list[str]
    duplicates: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.ids)


def publish(
    topic: str,
    data: Any,
    *,
    type: str,
    key: str | None = None,
    id: str | None = None,
    subject: str | None = None,
    time: str | None = None,
    source: str | None = None,
    on_commit: bool = False,
    outbox: bool = False,
) -> str:
    """Publish one event from Python and return its id.

    Raises the same ``PublishError`` subclasses the HTTP API answers with.
    ``on_commit=True`` stores it when the current transaction commits (none
    if it rolls back); ``outbox=True`` also survives a crash between the
    commit and the store (see ``eventflow.outbox``). Both are opt-in: a plain
    ``publish()`` keeps its promise that the event is in Redis when it returns.
    """
    event: dict[str, Any] = {"type": type, "data": data}
    for name, value in (("key", key), ("id", id), ("subject", subject), ("time", time)):
        if value is not None:
            event[name] = value
    return publish_batch(topic, [event], source=source, on_commit=on_commit, outbox=outbox).ids[0]


def publish_batch(
    topic: str, events: Iterable[dict], *, source: str | None = None, on_commit: bool = False, outbox: bool = False
) -> PublishResult:
    """Publish plain-form events (``{"type", "data", ...}``) all or nothing (``on_commit``/``outbox``: see ``publish``).

    Inside a handler, each event names the handled one as its cause and joins
    its trace, unless it says otherwise (``eventflow.tracing``).
    """
    spec = require_topic(topic)
    attributes = tracing.inherit([from_simple(raw, index) for index, raw in enumerate(events)])
    source = source or conf.get("PRODUCER_SOURCE")
    if outbox or on_commit:
        from . import outbox as transactional

        defer = transactional.write if outbox else transactional.on_commit
        return PublishResult(ids=defer(spec.name, attributes, source=source), stream_ids=[])
    result = store(spec, attributes, source=source)
    tracing.remember_children(spec.name, attributes, result.stream_ids)
    return result


def require_topic(name: str) -> TopicSpec:
    spec = get_spec(name)
    if spec is None:
        raise UnknownTopic(f"no topic named {name[:100]!r}")
    if not spec.active:
        raise Forbidden(f"topic {spec.name!r} is inactive", code="topic_inactive")
    return spec


def store(spec: TopicSpec, attributes: list[dict], *, source: str) -> PublishResult:
    """Seal events and write them to the topic's stream in one atomic step."""
    batch = prepare(spec, attributes, source=source)
    if conf.get("SYNC"):
        from .sync import deliver_inline

        return deliver_inline(spec, batch.envelopes)
    client = get_redis()
    try:
        refuse_if_evicting(client)
        if batch.needs_script or type(client) is not redis.Redis:
            replies = STORE_SCRIPT(client, batch.keys, batch.args)
        else:
            replies = _store_plain(client, batch, source)
    except redis.RedisError as exc:
        raise unavailable(exc) from exc
    return batch.result(replies)


def _store_plain(client: redis.Redis, batch: Batch, source: str) -> list:
    """Store events that need no dedup check: XADDs and counters in one MULTI/EXEC.

    Cheaper than the script for Redis (no Lua) and for us (one write, one
    read), and still all or nothing.
    """
    stream, counters = batch.keys[0], batch.keys[1]
    payloads = batch.args[5::2]
    counts = [
        ("HINCRBY", counters, "published", len(payloads)),
        ("HINCRBY", counters, f"published:{source}", len(payloads)),
    ]
    if len(payloads) == 1:  # one XADD is atomic by itself; the counts are only figures
        replies = call_many(client, [("XADD", stream, "*", "e", payloads[0]), *counts])
        if isinstance(replies[0], Exception):
            raise replies[0] if isinstance(replies[0], redis.RedisError) else redis.RedisError(str(replies[0]))
        return replies[:1]
    executed = call_transaction(client, [*[("XADD", stream, "*", "e", p) for p in payloads], *counts])
    failed = next((r for r in executed if isinstance(r, Exception)), None)
    if failed is not None:  # e.g. out of memory part way: say so rather than half-succeed quietly
        raise redis.RedisError(f"storing the batch failed part way: {failed}")
    return executed[: len(payloads)]


@dataclass(slots=True)
class Batch:
    """Sealed events and the script call that stores them (shared by the sync and async paths)."""

    envelopes: list[dict]
    keys: list[str]
    args: list[Any]

    @property
    def needs_script(self) -> bool:
        """A dedup key or a guard takes the script; plain events do not."""
        return len(self.keys) > 3 or self.args[3] != ""

    def result(self, replies: list) -> PublishResult:
        result = PublishResult(ids=[e["id"] for e in self.envelopes], stream_ids=[])
        stream_ids = result.stream_ids
        for envelope, reply in zip(self.envelopes, replies):
            reply = reply.decode() if isinstance(reply, bytes) else reply
            if reply.startswith("dup:"):
                result.duplicates.append(envelope["id"])
                reply = reply[4:]
            stream_ids.append(reply)
        return result


def prepare(spec: TopicSpec, attributes: list[dict], *, source: str, guard: str = "") -> Batch:
    """Check and seal a batch; raise the ``PublishError`` a bad one deserves.

    ``guard``, when given, is the value the topic's token-cache generation
    must still have for the store to happen (see ``asgi_publish``).
    """
    if not attributes:
        raise InvalidEvent(EMPTY_BATCH, code="empty_batch")
    limit = conf.get("MAX_BATCH_EVENTS")
    if len(attributes) > limit:
        raise TooLarge(f"{len(attributes)} events is over the batch limit of {limit}")
    name = spec.stream  # the topic's Redis identity: a renamed topic keeps its stream
    script_keys = [keys.stream(name), keys.counters(name), keys.auth_generation(name)]
    args: list[Any] = [conf.get("DEDUP_WINDOW"), source, len(attributes), guard]
    envelopes = []
    single = len(attributes) == 1
    # The events of one batch are accepted at one moment: they share its time.
    now, fresh_ids = now_rfc3339(), new_event_ids(len(attributes))
    for index, raw in enumerate(attributes):
        envelope, payload = seal(
            raw, topic=spec, source=source, index=None if single else index, fresh_id=fresh_ids[index], now=now
        )
        envelopes.append(envelope)
        # Generated ids are fresh by construction; only producers' own ids need a dedup key.
        if raw.get("id") is not None:
            script_keys.append(keys.dedup(name, source, envelope["id"]))
            args += ("1", payload)
        else:
            args += ("0", payload)
    return Batch(envelopes, script_keys, args)


def unavailable(exc: Exception) -> BrokerUnavailable:
    """Shared by every publish path: see ``errors.broker_error``."""
    return broker_error(exc)
