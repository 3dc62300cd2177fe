"""Retention: trimming topic streams to their limits, counting what consumers lose.

Publishing never trims. A trim pass (run by workers every few seconds; safe if
several run, as one Lua script does it atomically) cuts the oldest events past
a topic's count or age limit. Before it cuts, it counts for every consumer
group the events it had not yet acknowledged (pending or never delivered) and
adds them to the topic's ``trimmed:<consumer>`` counter, which the dashboard
raises. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from . import keys
from .connection import LuaScript, get_redis

logger = logging.getLogger(__name__)

# At most this many events are cut per topic and pass, so one pass stays short.
MAX_CUT_PER_PASS = 10_000

# KEYS: stream, counters. ARGV: maxlen (0: none), min id ("": none), max cut.
# Returns {cut, lost-per-group...} as a flat list: cut, group1, lost1, group2, lost2, ...
_TRIM = LuaScript(
    """
local stream = KEYS[1]
local maxlen = tonumber(ARGV[1])
local max_cut = tonumber(ARGV[3])
if redis.call('EXISTS', stream) == 0 then return {0} end
local length = redis.call('XLEN', stream)
local cut = 0
if maxlen > 0 and length > maxlen then cut = length - maxlen end
if cut > max_cut then cut = max_cut end
local boundary = nil
if cut > 0 then
  local doomed = redis.call('XRANGE', stream, '-', '+', 'COUNT', cut)
  boundary = doomed[#doomed][1]
end
if ARGV[2] ~= '' then
  local old = redis.call('XRANGE', stream, '-', '(' .. ARGV[2], 'COUNT', max_cut)
  if #old > 0 and (boundary == nil or #old > cut) then
    boundary = old[#old][1]
    cut = #old
  end
end
if boundary == nil then return {0} end
local out = {cut}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, last = nil, nil
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  local lost = #redis.call('XPENDING', stream, name, '-', boundary, max_cut)
  local undelivered = redis.call('XRANGE', stream, '(' .. last, boundary, 'COUNT', max_cut)
  lost = lost + #undelivered
  if lost > 0 then
    redis.call('HINCRBY', KEYS[2], 'trimmed:' .. name, lost)
    out[#out + 1] = name
    out[#out + 1] = lost
  end
end
-- MINID keeps ids >= its argument, so pass the id right after the boundary.
local dash = string.find(boundary, '-', 1, true)
local after = string.sub(boundary, 1, dash - 1) .. '-' .. (tonumber(string.sub(boundary, dash + 1)) + 1)
redis.call('XTRIM', stream, 'MINID', after)
redis.call('HINCRBY', KEYS[2], 'trimmed', cut)
return out
"""
)


@dataclass(frozen=True, slots=True)
class TrimReport:
    topic: str
    cut: int
    lost: dict[str, int]  # consumer → unacknowledged events cut


def trim(
    topic: str, max_events: int | None, max_age_seconds: float | None, client: redis.Redis | None = None
) -> TrimReport:
    """Cut one topic's stream down to its retention limits (at most ``MAX_CUT_PER_PASS``).

    ``topic`` is the topic's Redis identity (``Topic.stream_name``); the report's
    ``lost`` is keyed by the consumers' group names.
    """
    min_id = f"{int((time.time() - max_age_seconds) * 1000)}-0" if max_age_seconds else ""
    reply = _TRIM(
        client or get_redis(), [keys.stream(topic), keys.counters(topic)], [max_events or 0, min_id, MAX_CUT_PER_PASS]
    )
    lost = {_text(name): int(count) for name, count in zip(reply[1::2], reply[2::2])}
    if lost:
        logger.warning("retention on %s cut events not yet acknowledged: %s", topic, lost)
    return TrimReport(topic=topic, cut=int(reply[0]), lost=lost)


def trim_all(client: redis.Redis | None = None) -> list[TrimReport]:
    """One retention pass over every topic with a limit."""
    from .models import Topic

    reports = []
    limits = Topic.objects.values_list("stream_name", "retention_max_events", "retention_max_age")
    for stream, max_events, max_age in limits:
        if max_events or max_age:
            seconds = max_age.total_seconds() if max_age else None
            reports.append(trim(stream, max_events, seconds, client))
    return reports


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
