"""Turning what a producer sent into CloudEvents 1.0 envelopes, or saying why not.

Every check here is shared by the HTTP API and the Python API, so both accept
and refuse exactly the same events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson

from .errors import InvalidEvent, TooLarge
from .topics import TopicSpec

SPECVERSION = "1.0"
MAX_ATTRIBUTE_CHARS = 200
# CloudEvents: attribute names are lowercase letters and digits, at most 20 chars.
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CORE_ATTRIBUTES = {"id", "type", "time", "subject", "key", "data"}
# Attributes the broker sets itself; a producer cannot supply them as extensions.
_RESERVED = {"specversion", "source", "topic", "datacontenttype", "dataschema", "data_base64"}


def new_event_id() -> str:
    return str(uuid.uuid4())


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_schema(schema: Any) -> None:
    """Raise ValueError if ``schema`` is not a valid JSON Schema."""
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None


def compile_schema(schema: Any) -> Callable[[Any], None]:
    """Return a function that raises ValueError when data fails ``schema``."""
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)

    def validate(data: Any) -> None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ValueError(f"data at {where}: {error.message}")

    return validate


def from_simple(raw: Any, index: int | None = None) -> dict:
    """Normalise one event of the plain JSON form: ``{"type", "data", "id"?, ...}``."""
    if not isinstance(raw, dict):
        raise InvalidEvent("an event must be a JSON object", index=index)
    attributes = {}
    for name, value in raw.items():
        if name in _CORE_ATTRIBUTES:
            attributes[name] = value
        elif name in _RESERVED:
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
            raise InvalidEvent(f"missing '{required}'", index=index)
    attributes: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("specversion", "source"):
            continue  # the broker names the producer as the source
        if name == "partitionkey":
            attributes["key"] = value
        elif name in _CORE_ATTRIBUTES or name in ("datacontenttype", "dataschema", "data_base64"):
            attributes[name] = value
        else:
            attributes[name] = _extension(name, value, index)
    if "data" in attributes and "data_base64" in attributes:
        raise InvalidEvent("give 'data' or 'data_base64', not both", index=index)
    return attributes


def seal(attributes: dict, *, topic: TopicSpec, source: str, index: int | None = None) -> tuple[dict, bytes]:
    """Complete and check an event; return the envelope and its stored bytes."""
    event_id = attributes.get("id")
    if event_id is None:
        event_id = new_event_id()
    elif not _is_short_text(event_id):
        raise InvalidEvent("'id' must be a non-empty string of at most 200 characters", index=index)
    event_type = attributes["type"]
    if not _is_short_text(event_type):
        raise InvalidEvent("'type' must be a non-empty string of at most 200 characters", index=index)
    for optional in ("key", "subject"):
        value = attributes.get(optional)
        if value is not None and not _is_short_text(value):
            raise InvalidEvent(f"'{optional}' must be a non-empty string of at most 200 characters", index=index)
    time_value = attributes.get("time")
    if time_value is None:
        time_value = now_rfc3339()
    elif not _is_rfc3339(time_value):
        raise InvalidEvent(
            "'time' must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z", index=index
        )
    data = attributes.get("data")
    if topic.validate_data is not None and "data_base64" not in attributes:
        try:
            topic.validate_data(data)
        except ValueError as exc:
            raise InvalidEvent(f"fails the topic's schema: {exc}", index=index, code="schema_mismatch") from None
    envelope = {
        **attributes,
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time_value,
        "topic": topic.name,
        "data": data,
    }
    payload = orjson.dumps(envelope)
    if len(payload) > topic.max_event_bytes:
        raise TooLarge(
            f"event {index if index is not None else 0}: {len(payload)} bytes is over the topic's "
            f"limit of {topic.max_event_bytes} bytes",
            index=index,
        )
    return envelope, payload


def _extension(name: str, value: Any, index: int | None) -> Any:
    if not _EXTENSION_NAME.match(name):
        raise InvalidEvent(
            f"unknown attribute '{name[:40]}' (extension names are 1–20 lowercase letters or digits)",
            index=index,
        )
    if not isinstance(value, (str, int, bool)) or (isinstance(value, str) and len(value) > 2048):
        raise InvalidEvent(f"extension '{name}' must be a string, integer or boolean", index=index)
    return value


def _is_short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ATTRIBUTE_CHARS


def _is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40 or "T" not in value.upper():
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None
