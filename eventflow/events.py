"""The event a handler receives."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import orjson

_ATTRIBUTES = frozenset({"specversion", "id", "source", "type", "time", "topic", "key", "subject", "data"})
_set = object.__setattr__
_new = object.__new__


class _Record:
    """What an event reads from when no ``delivery.Delivery`` stands behind it (tests, sync mode)."""

    __slots__ = ("envelope", "attempt", "stream_id", "replay")

    def __init__(self, envelope: dict, attempt: int, stream_id: str, replay: int | None) -> None:
        self.envelope, self.attempt, self.stream_id, self.replay = envelope, attempt, stream_id, replay


class Event:
    """One delivery of an immutable event; ``attempt`` counts from 1.

    ``replay`` is the id of the replay job that sent it again (None for a first
    delivery and its retries); ``stream_id`` is then still the event's original
    id in the topic's stream.

    It reads everything on access from the delivery behind it (anything with
    ``envelope``, ``attempt``, ``stream_id`` and ``replay``, which it never
    changes), so a worker hands an event to a handler by setting one slot
    (``of``) rather than copying the delivery apart: the delivery hot path
    makes one per event.
    """

    __slots__ = ("_delivery",)

    _delivery: _Record

    def __init__(
        self,
        id: str,
        type: str,
        source: str,
        topic: str,
        time: str,
        data: Any,
        key: str | None = None,
        subject: str | None = None,
        attempt: int = 1,
        stream_id: str = "",
        extensions: dict[str, Any] | None = None,
        replay: int | None = None,
    ) -> None:
        envelope = {**(extensions or {}), "id": id, "type": type, "source": source, "topic": topic, "time": time}
        envelope["data"] = data
        if key is not None:
            envelope["key"] = key
        if subject is not None:
            envelope["subject"] = subject
        _set(self, "_delivery", _Record(envelope, attempt, stream_id, replay))

    @classmethod
    def from_envelope(
        cls, envelope: dict, *, attempt: int = 1, stream_id: str = "", replay: int | None = None
    ) -> Event:
        return of(_Record(envelope, attempt, stream_id, replay))

    id = property(lambda self: self._delivery.envelope["id"])
    type = property(lambda self: self._delivery.envelope["type"])
    source = property(lambda self: self._delivery.envelope["source"])
    topic = property(lambda self: self._delivery.envelope["topic"])
    time = property(lambda self: self._delivery.envelope["time"])
    data = property(lambda self: self._delivery.envelope.get("data"))
    key = property(lambda self: self._delivery.envelope.get("key"))
    subject = property(lambda self: self._delivery.envelope.get("subject"))
    attempt = property(lambda self: self._delivery.attempt)
    stream_id = property(lambda self: self._delivery.stream_id)
    replay = property(lambda self: self._delivery.replay)

    def to_json(self) -> bytes:
        """The event as a structured-mode CloudEvent: its envelope, as stored, in JSON.

        Binary data travels as ``data_base64`` alone (envelopes stored before
        that rule may hold a ``"data": null`` beside it, left out here).
        """
        envelope = self._delivery.envelope
        if "data_base64" in envelope and "data" in envelope:
            envelope = {name: value for name, value in envelope.items() if name != "data"}
        return orjson.dumps(envelope)

    @property
    def extensions(self) -> dict[str, Any]:
        return {k: v for k, v in self._delivery.envelope.items() if k not in _ATTRIBUTES}

    def extension(self, name: str) -> Any:
        """One extension attribute's value, or None: ``extensions.get(name)`` without building the dict."""
        return None if name in _ATTRIBUTES else self._delivery.envelope.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple:
        return (self.id, self.type, self.source, self.topic, self.time, self.data, self.key, self.subject,
                self.attempt, self.stream_id, self.extensions, self.replay)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.id, self.topic, self.attempt, self.stream_id))

    def __repr__(self) -> str:
        return (
            f"Event(id={self.id!r}, type={self.type!r}, source={self.source!r}, topic={self.topic!r}, "
            f"time={self.time!r}, data={self.data!r}, key={self.key!r}, subject={self.subject!r}, "
            f"attempt={self.attempt!r}, stream_id={self.stream_id!r}, extensions={self.extensions!r}, "
            f"replay={self.replay!r})"
        )


_hold = Event._delivery.__set__  # type: ignore[attr-defined]  # the slot's own setter: Event.__setattr__ refuses


def of(delivery: Any) -> Event:
    """The event ``delivery`` (a ``delivery.Delivery``) hands its handler."""
    event = _new(Event)
    _hold(event, delivery)
    return event
