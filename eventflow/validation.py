"""Turning what a producer sent into CloudEvents 1.0 envelopes, or saying why not.

Every check here is shared by the HTTP API and the Python API, so both accept
and refuse exactly the same events.

Topic schemas are checked and applied by ``schemas`` (RE2, depth, size and
step limits); ``check_schema`` and ``compile_schema`` are re-exported here.
"""

from __future__ import annotations

import base64
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from .errors import InvalidEvent, TooLarge
from .schemas import check_schema as check_schema  # re-exported: validation was their home
from .schemas import compile_schema as compile_schema
from .topics import TopicSpec

SPECVERSION = "1.0"
MAX_ATTRIBUTE_CHARS = 200
MAX_EXTENSION_CHARS = 2048
# CloudEvents: attribute names are lowercase letters and digits, at most 20 chars.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
# CloudEvents "Integer" is a signed 32-bit number.
_INT32 = range(-(2**31), 2**31)
# RFC 3339 date-time (section 5.6): full date, "T", full time, "Z" or a numeric offset.
RFC3339_PATTERN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_CORE_ATTRIBUTES = {"id", "type", "time", "subject", "key", "data"}
# Attributes the broker sets itself; a producer cannot supply them as extensions.
RESERVED = frozenset({"specversion", "source", "topic", "datacontenttype", "dataschema", "data_base64"})


def new_event_id() -> str:
    return new_event_ids(1)[0]


def new_event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text.

    One read of the OS's randomness for the lot, formatted directly: about 3×
    quicker per id than ``str(uuid.uuid4())``, which counts on the publish path.
    """
    digits = os.urandom(16 * count).hex()
    return [
        f"{digits[i : i + 8]}-{digits[i + 8 : i + 12]}-4{digits[i + 13 : i + 16]}-"
        f"{_VARIANT[int(digits[i + 16], 16) & 3]}{digits[i + 17 : i + 20]}-{digits[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


_VARIANT = "89ab"  # the RFC 4122 variant: the top two bits of this digit are 10
_clock: tuple[int, str] = (0, "")  # (millisecond, its RFC 3339 text): busy publishers share the text


def now_rfc3339() -> str:
    """The current UTC time in RFC 3339 with milliseconds, e.g. ``2026-01-31T12:00:00.123Z``."""
    global _clock
    millisecond = time.time_ns() // 1_000_000
    cached = _clock
    if cached[0] != millisecond:
        moment = datetime.fromtimestamp(millisecond // 1000, UTC).replace(microsecond=millisecond % 1000 * 1000)
        cached = _clock = (millisecond, moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return cached[1]


def from_simple(raw: Any, index: int | None = None) -> dict:
    """Normalise one event of the plain JSON form: ``{"type", "data", "id"?, ...}``."""
    if not isinstance(raw, dict):
        raise InvalidEvent("an event must be a JSON object", index=index)
    attributes = {}
    for name, value in raw.items():
        if name in _CORE_ATTRIBUTES:
            attributes[name] = value
        elif name in RESERVED:
            raise InvalidEvent(f"'{name}' is set by the broker, not by producers", index=index)
        else:
            attributes[name] = _extension(name, value, index)
    if "type" not in attributes:
        raise InvalidEvent("missing 'type'", index=index, code="missing_type")
    return attributes


def from_structured(raw: Any, index: int | None = None) -> dict:
    """Normalise one structured-mode CloudEvent (``specversion`` 1.0)."""
    if not isinstance(raw, dict):
        raise InvalidEvent("a CloudEvent must be a JSON object", index=index)
    if raw.get("specversion") != SPECVERSION:
        raise InvalidEvent("'specversion' must be \"1.0\"", index=index)
    for required in ("id", "source", "type"):
        if required not in raw:
            code = "missing_type" if required == "type" else None
            raise InvalidEvent(f"missing '{required}'", index=index, code=code)
    attributes: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("specversion", "source"):
            continue  # the broker names the producer as the source
        if name == "topic":
            raise InvalidEvent("'topic' is set by the broker, not by producers", index=index)
        if name == "partitionkey":  # the CloudEvents extension, kept; it is also our ordering key
            attributes["partitionkey"] = _extension(name, value, index)
            attributes.setdefault("key", value)
        elif name in _CORE_ATTRIBUTES:
            attributes[name] = value
        elif name in _DATA_DESCRIPTORS:
            attributes[name] = _descriptor(name, value, index)
        else:
            attributes[name] = _extension(name, value, index)
    if "data" in attributes and "data_base64" in attributes:
        raise InvalidEvent("give 'data' or 'data_base64', not both", index=index)
    return attributes


def seal(
    attributes: dict,
    *,
    topic: TopicSpec,
    source: str,
    index: int | None = None,
    fresh_id: str | None = None,
    now: str | None = None,
) -> tuple[dict, bytes]:
    """Complete and check an event; return the envelope and its stored bytes.

    An event without an id gets ``fresh_id`` (or a new one); without a time, ``now``
    (or the current time): a batch passes both, made once for all its events.
    """
    _check_text_attributes(attributes, index)
    _check_data(attributes, topic, index)
    envelope = {
        **attributes,
        "specversion": SPECVERSION,
        "id": attributes.get("id") or fresh_id or new_event_id(),
        "source": source,
        "type": attributes["type"],
        "time": _checked_time(attributes.get("time"), index, now),
        "topic": topic.name,
    }
    if "data_base64" not in attributes:  # the JSON format carries one of the two, never both
        envelope["data"] = attributes.get("data")
    payload = _dump(envelope, index)
    if len(payload) > topic.max_event_bytes:
        raise TooLarge(
            f"event {index if index is not None else 0}: {len(payload)} bytes is over the topic's "
            f"limit of {topic.max_event_bytes} bytes",
            index=index,
        )
    return envelope, payload


_DATA_DESCRIPTORS = ("datacontenttype", "dataschema", "data_base64")


def _check_text_attributes(attributes: dict, index: int | None) -> None:
    """``type`` is required; ``id``, ``key`` and ``subject`` are optional; all short strings."""
    for name in ("id", "type", "key", "subject"):
        value = attributes.get(name)
        if (value is not None or name == "type") and not _is_short_text(value):
            raise InvalidEvent(
                f"'{name}' must be a non-empty string of at most {MAX_ATTRIBUTE_CHARS} characters", index=index
            )


def _checked_time(value: Any, index: int | None, now: str | None) -> str:
    if value is None:
        return now or now_rfc3339()
    if not _is_rfc3339(value):
        raise InvalidEvent(
            "'time' must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z",
            index=index,
            code="invalid_time",
        )
    return value


def _check_data(attributes: dict, topic: TopicSpec, index: int | None) -> None:
    if topic.validate_data is None:
        return
    if "data_base64" in attributes:
        raise InvalidEvent(
            "fails the topic's schema: binary data cannot satisfy a JSON Schema; send JSON data",
            index=index,
            code="schema_mismatch",
        )
    try:
        topic.validate_data(attributes.get("data"))
    except ValueError as exc:
        raise InvalidEvent(f"fails the topic's schema: {exc}", index=index, code="schema_mismatch") from None


def _dump(envelope: dict, index: int | None) -> bytes:
    try:
        return orjson.dumps(envelope)
    except orjson.JSONEncodeError as exc:  # nested past orjson's 254 levels, or not JSON (Python API)
        raise InvalidEvent(f"'data' cannot be stored as JSON: {exc}", index=index, code="unstorable_data") from None


def _descriptor(name: str, value: Any, index: int | None) -> str:
    if name == "data_base64":
        if not isinstance(value, str) or not _is_base64(value):
            raise InvalidEvent("'data_base64' must be a base64 string", index=index)
    elif not _is_short_text(value):
        raise InvalidEvent(
            f"'{name}' must be a non-empty string of at most {MAX_ATTRIBUTE_CHARS} characters", index=index
        )
    return value


def _extension(name: str, value: Any, index: int | None) -> Any:
    if not _EXTENSION_NAME.fullmatch(name):
        raise InvalidEvent(
            f"unknown attribute {name[:40]!r} (extension names are 1–20 lowercase letters or digits)",
            index=index,
        )
    if isinstance(value, bool) or (isinstance(value, str) and len(value) <= MAX_EXTENSION_CHARS):
        return value
    if isinstance(value, int) and value in _INT32:
        return value
    raise InvalidEvent(
        f"extension '{name}' must be a string of at most {MAX_EXTENSION_CHARS} characters, "
        "a 32-bit integer or a boolean",
        index=index,
    )


def _is_short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ATTRIBUTE_CHARS


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def _is_rfc3339(value: Any) -> bool:
    """Strict RFC 3339 (``datetime.fromisoformat`` alone accepts ISO 8601 forms such as ``2026-W05``)."""
    if not isinstance(value, str) or not RFC3339_PATTERN.fullmatch(value):
        return False
    text = value.upper()
    if text[17:19] == "60":  # a leap second is valid RFC 3339; datetime cannot hold it
        text = f"{text[:17]}59{text[19:]}"
    try:
        datetime.fromisoformat(text)
    except ValueError:  # e.g. February 30th, hour 25
        return False
    return True
