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

from . import conf, keys
from .connection import LuaScript, get_redis
from .errors import BrokerUnavailable, Forbidden, InvalidEvent, TooLarge, UnknownTopic
from .topics import TopicSpec, get_spec
from .validation import from_simple, seal

# KEYS: stream, counters, then one dedup key per event that carries one.
# ARGV: dedup ttl, producer, count, then per event: has-dedup-key ("1"/"0"), payload.
# Returns per event its stream id, or "dup:<original stream id>".
# No trimming here: retention.py trims, counting what consumers had not acked.
_STORE = LuaScript(
    """
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local results = {}
local k = 3
local stored = 0
for i = 1, n do
  local has_key = ARGV[2 + 2 * i]
  local payload = ARGV[3 + 2 * i]
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
) -> str:
    """Publish one event from Python and return its id.

    Raises the same ``PublishError`` subclasses the HTTP API answers with.
    """
    event: dict[str, Any] = {"type": type, "data": data}
    for name, value in (("key", key), ("id", id), ("subject", subject), ("time", time)):
        if value is not None:
            event[name] = value
    return publish_batch(topic, [event], source=source).ids[0]


def publish_batch(topic: str, events: Iterable[dict], *, source: str | None = None) -> PublishResult:
    """Publish plain-form events (``{"type", "data", ...}``) all or nothing."""
    spec = require_topic(topic)
    attributes = [from_simple(raw, index) for index, raw in enumerate(events)]
    return store(spec, attributes, source=source or conf.get("PRODUCER_SOURCE"))


def require_topic(name: str) -> TopicSpec:
    spec = get_spec(name)
    if spec is None:
        raise UnknownTopic(f"no topic named {name[:100]!r}")
    if not spec.active:
        raise Forbidden(f"topic {spec.name!r} is inactive", code="topic_inactive")
    return spec


def store(spec: TopicSpec, attributes: list[dict], *, source: str) -> PublishResult:
    """Seal events and write them to the topic's stream in one atomic step."""
    if not attributes:
        raise InvalidEvent("the batch holds no events", code="empty_batch")
    limit = conf.get("MAX_BATCH_EVENTS")
    if len(attributes) > limit:
        raise TooLarge(f"{len(attributes)} events is over the batch limit of {limit}")
    single = len(attributes) == 1
    sealed = [seal(a, topic=spec, source=source, index=None if single else i) for i, a in enumerate(attributes)]
    if conf.get("SYNC"):
        from .sync import deliver_inline

        return deliver_inline(spec, [envelope for envelope, _ in sealed])
    return _write(spec, sealed, source, explicit_ids=[a.get("id") is not None for a in attributes])


def _write(spec: TopicSpec, sealed: list[tuple[dict, bytes]], source: str, explicit_ids: list[bool]) -> PublishResult:
    script_keys = [keys.stream(spec.name), keys.counters(spec.name)]
    args: list[Any] = [conf.get("DEDUP_WINDOW"), source, len(sealed)]
    for (envelope, payload), explicit in zip(sealed, explicit_ids):
        # Generated ids are fresh by construction; only producers' own ids need a dedup key.
        if explicit:
            script_keys.append(keys.dedup(spec.name, source, envelope["id"]))
        args.extend(("1" if explicit else "0", payload))
    try:
        replies = _STORE(get_redis(), script_keys, args)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"the event store is unreachable ({type(exc).__name__}); nothing was accepted") from exc
    result = PublishResult(ids=[], stream_ids=[])
    for (envelope, _), reply in zip(sealed, replies):
        reply = reply.decode() if isinstance(reply, bytes) else reply
        result.ids.append(envelope["id"])
        if reply.startswith("dup:"):
            result.duplicates.append(envelope["id"])
            result.stream_ids.append(reply[4:])
        else:
            result.stream_ids.append(reply)
    return result
