"""Topic settings as the publish path needs them, cached briefly per process.

Publishing must not query the database for every event; a topic edited in the
admin takes effect here at once (signals clear the cache) and in other
processes within ``TOPIC_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import conf

_cache: dict[str, tuple[float, TopicSpec | None]] = {}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    id: int
    name: str
    active: bool
    max_event_bytes: int
    validate_data: Callable[[Any], None] | None  # raises ValueError naming the problem
    stream: str = ""  # its Redis identity (``Topic.stream_name``); keys are built from it, never from ``name``

    def __post_init__(self) -> None:
        if not self.stream:  # a spec built by hand (tests) for a topic that was never renamed
            object.__setattr__(self, "stream", self.name)


def get_spec(name: str) -> TopicSpec | None:
    """Return the named topic's spec, or None if there is no such topic."""
    now = time.monotonic()
    cached = _cache.get(name)
    if cached is not None and cached[0] > now:
        return cached[1]
    spec = _load(name)
    _cache[name] = (now + conf.get("TOPIC_CACHE_SECONDS"), spec)
    return spec


def stream_name(name: str) -> str:
    """The Redis identity of the topic named ``name`` now (the name itself if there is no such topic)."""
    spec = get_spec(name)
    return spec.stream if spec is not None else name


def peek(name: str) -> TopicSpec | None:
    """The cached spec if it is fresh, without touching the database (for async callers)."""
    cached = _cache.get(name)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def clear_cache(*args: Any, **kwargs: Any) -> None:
    _cache.clear()


def _load(name: str) -> TopicSpec | None:
    from .models import Topic
    from .schemas import compile_schema

    topic = Topic.objects.filter(name=name).first()
    if topic is None:
        return None
    return TopicSpec(
        id=topic.pk,
        name=topic.name,
        active=topic.active,
        max_event_bytes=topic.max_event_bytes,
        validate_data=compile_schema(topic.data_schema) if topic.data_schema is not None else None,
        stream=topic.stream_name,
    )
