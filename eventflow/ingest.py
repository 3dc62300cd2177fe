"""Reading a publish request's body into event attributes, by content type.

Framework-neutral (bytes and headers in, attribute dicts out), so a thin
ASGI path can share it with the Django view.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import InvalidEvent, MalformedRequest, TooLarge, UnsupportedMediaType
from .validation import from_simple, from_structured

JSON = "application/json"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"
SUPPORTED = (JSON, CLOUDEVENT, CLOUDEVENT_BATCH)


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; charset=...`` into the lowercased type and its parameters."""
    main, *params = content_type.split(";")
    parameters = {}
    for param in params:
        name, _, value = param.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"').lower()
    return main.strip().lower(), parameters


def parse(content_type: str, headers: Mapping[str, str], body: bytes, *, max_events: int) -> list[dict]:
    """Return the request's events as attribute dicts, or raise a ``PublishError``.

    ``headers`` maps lowercased header names to values (for binary mode).
    """
    kind, params = media_type(content_type or "")
    if "ce-specversion" in headers:
        return [_binary_mode(kind, headers, body)]
    if kind not in SUPPORTED:
        shown = kind or "none"
        raise UnsupportedMediaType(
            f"content type {shown[:100]!r} is not supported; use {', '.join(SUPPORTED)} or CloudEvents binary mode"
        )
    if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("only the utf-8 charset is supported")
    document = load_json(body)
    if kind == CLOUDEVENT:
        return [from_structured(document)]
    if kind == CLOUDEVENT_BATCH:
        if not isinstance(document, list):
            raise InvalidEvent("a CloudEvents batch must be a JSON array")
        _check_count(document, max_events)
        return [from_structured(raw, index) for index, raw in enumerate(document)]
    if isinstance(document, dict) and "events" in document and "type" not in document:
        events = document["events"]
        if not isinstance(events, list):
            raise InvalidEvent("'events' must be a JSON array")
        if len(document) > 1:
            raise InvalidEvent("a batch holds only 'events'")
        _check_count(events, max_events)
        return [from_simple(raw, index) for index, raw in enumerate(events)]
    return [from_simple(document)]


def load_json(body: bytes) -> Any:
    if not body:
        raise MalformedRequest("the request body is empty", code="empty_body")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"malformed JSON: {exc}", code="malformed_json") from None


def _check_count(events: list, max_events: int) -> None:
    if not events:
        raise InvalidEvent("the batch holds no events", code="empty_batch")
    if len(events) > max_events:
        raise TooLarge(f"{len(events)} events is over the batch limit of {max_events}")


def _binary_mode(kind: str, headers: Mapping[str, str], body: bytes) -> dict:
    raw: dict[str, Any] = {name[3:]: value for name, value in headers.items() if name.startswith("ce-")}
    if kind:
        raw["datacontenttype"] = kind
    if body:
        if kind == JSON or kind.endswith("+json"):
            raw["data"] = load_json(body)
        elif kind.startswith("text/"):
            try:
                raw["data"] = body.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedRequest("the body is not valid UTF-8", code="invalid_encoding") from None
        else:
            raw["data_base64"] = base64.b64encode(body).decode("ascii")
    return from_structured(raw)
