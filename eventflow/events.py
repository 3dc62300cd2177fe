"""The event a handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

_ATTRIBUTES = {"specversion", "id", "source", "type", "time", "topic", "key", "subject", "data"}


@dataclass(frozen=True, slots=True)
class Event:
    """One delivery of an immutable event; ``attempt`` counts from 1."""

    id: str
    type: str
    source: str
    topic: str
    time: str
    data: Any
    key: str | None = None
    subject: str | None = None
    attempt: int = 1
    stream_id: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, envelope: dict, *, attempt: int = 1, stream_id: str = "") -> Event:
        return cls(
            id=envelope["id"],
            type=envelope["type"],
            source=envelope["source"],
            topic=envelope["topic"],
            time=envelope["time"],
            data=envelope.get("data"),
            key=envelope.get("key"),
            subject=envelope.get("subject"),
            attempt=attempt,
            stream_id=stream_id,
            extensions={k: v for k, v in envelope.items() if k not in _ATTRIBUTES},
        )


def decode(payload: bytes) -> dict:
    """Decode a stored envelope."""
    return orjson.loads(payload)
