"""Reading a publish request's body into event attributes, by content type.

Framework-neutral (bytes and headers in, attribute dicts out), so a thin
ASGI path can share it with the Django view.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from . import tracing
from .errors import InvalidEvent, MalformedRequest, TooLarge, UnsupportedMediaType
from .validation import from_simple, from_structured

JSON = "application/json"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"
SUPPORTED = (JSON, CLOUDEVENT, CLOUDEVENT_BATCH)
# Refused rather than accepted as a no-op: an empty batch is almost always a producer bug
# (a buffer flushed before it was filled), and a 202 would hide it.
EMPTY_BATCH = "the batch holds no events; send at least one (an empty batch is refused so that a lost batch shows)"


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

    ``headers`` maps lowercased header names to values (for binary mode, and
    a W3C ``traceparent`` that events without their own inherit).
    """
    return tracing.from_headers(_parse(content_type, headers, body, max_events=max_events), headers)


def _parse(content_type: str, headers: Mapping[str, str], body: bytes, *, max_events: int) -> list[dict]:
    kind, params = media_type(content_type or "")
    # The media type decides the mode (HTTP binding 3.1.1): a structured event may
    # travel with ce-* headers too, which are then ignored; otherwise ce-specversion
    # makes it binary mode.
    if "ce-specversion" in headers and kind not in (CLOUDEVENT, CLOUDEVENT_BATCH):
        return [_binary_mode(content_type or "", kind, headers, body)]
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
    """Parse a JSON body, refusing what ``orjson`` would silently accept: repeated keys."""
    if not body:
        raise MalformedRequest("the request body is empty", code="empty_body")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _check_utf8(body)
        raise MalformedRequest(f"malformed JSON: {exc}", code="malformed_json") from None
    if _may_repeat_keys(body, document):
        _refuse_repeated_keys(body)
    if _LONG_NUMBER.search(body):
        _refuse_inexact_integers(body)
    return document


def load_storable_json(body: bytes) -> Any:
    """``load_json`` for a request the database keeps (a replay's reason and filters, an edit's copy)."""
    document = load_json(body)
    if b"\\u0000" in body:  # JSON can only carry a NUL escaped
        refuse_nul(document)
    return document


def refuse_nul(value: Any) -> None:
    """Raise ``MalformedRequest`` for a NUL in any text of ``value``: PostgreSQL stores none, in text or jsonb."""
    pending = [value]  # a walk, not recursion: JSON may nest deeper than Python's recursion limit
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise MalformedRequest("text must not contain NUL (\\u0000): the database cannot store it", code="nul")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


# orjson reads an integer past 64 bits as a float, silently changing it (2**64 becomes
# 1.8446744073709552e19). Any such integer has 19 digits or more, so the exact check
# runs only for bodies that hold a run of 19 digits (in a string too: it decides).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_EXACT_INTEGERS = range(-(2**63), 2**64)


def _refuse_inexact_integers(body: bytes) -> None:
    try:
        json.loads(body, parse_int=_exact_int, parse_float=_ignore)
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(
            f"a number in the body cannot be stored exactly ({str(exc)[:100]}); send it as a string",
            code="number_out_of_range",
        ) from None


def _exact_int(text: str) -> int:
    value = int(text)
    if value not in _EXACT_INTEGERS:
        raise ValueError(f"the integer {text[:30]}… is outside the 64-bit range")
    return value


def _check_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding") from None


def _may_repeat_keys(body: bytes, document: Any) -> bool:
    """Return False when ``body`` provably has no repeated object keys (the fast path).

    Each key in a JSON text is followed by one colon; every other colon lies in
    a string. ``orjson.dumps`` of the parsed document therefore holds exactly one
    colon per kept key plus the colons in kept strings. Without ``\\u003a``
    escapes a parsed string holds no more colons than its raw text, so equal
    colon counts mean no key was dropped as a repeat.
    """
    colons = body.count(b":")
    if not colons:
        return False
    if b"\\u003a" in body or b"\\u003A" in body:
        return True
    try:
        return colons != orjson.dumps(document).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes; let the exact check decide
        return True


class _RepeatedKey(Exception):
    pass


def _refuse_repeated_keys(body: bytes) -> None:
    """The slow, exact check: the stdlib parser reports every object's key list."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs, parse_int=_ignore, parse_float=_ignore)
    except _RepeatedKey as exc:
        raise MalformedRequest(
            f"a JSON object repeats the key {str(exc)[:100]!r}; send each key once", code="duplicate_key"
        ) from None
    except (ValueError, RecursionError):
        raise MalformedRequest("malformed JSON: nested too deeply", code="malformed_json") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)


def _ignore(text: str) -> None:
    return None


def _check_count(events: list, max_events: int) -> None:
    if not events:
        raise InvalidEvent(EMPTY_BATCH, code="empty_batch")
    if len(events) > max_events:
        raise TooLarge(f"{len(events)} events is over the batch limit of {max_events}")


def _binary_mode(content_type: str, kind: str, headers: Mapping[str, str], body: bytes) -> dict:
    """One binary-mode event: attributes from ce-* headers (percent-decoded), data from the body.

    Without a Content-Type the body is read as JSON, as the CloudEvents SDKs
    do (an event without ``datacontenttype`` holds JSON data). With one, it is
    kept, parameters and all, as ``datacontenttype``.
    """
    raw: dict[str, Any] = {name[3:]: _header_value(name, value) for name, value in headers.items() if name.startswith("ce-")}
    for name in ("data", "datacontenttype"):
        if name in raw:
            where = "the body" if name == "data" else "Content-Type"
            raise InvalidEvent(f"in binary mode '{name}' travels as {where}, not as a ce-{name} header")
    if kind:
        raw["datacontenttype"] = content_type.strip()
    if body:
        raw.update(_binary_data(kind, body))
    return from_structured(raw)


def _binary_data(kind: str, body: bytes) -> dict[str, Any]:
    if not kind or kind == JSON or kind.endswith("+json"):
        return {"data": load_json(body)}
    if kind.startswith("text/"):
        try:
            return {"data": body.decode("utf-8")}
        except UnicodeDecodeError:
            raise MalformedRequest("the body is not valid UTF-8", code="invalid_encoding") from None
    return {"data_base64": base64.b64encode(body).decode("ascii")}


def _header_value(name: str, value: str) -> str:
    """A ce-* header's value, percent-decoded as UTF-8 (HTTP binding 3.1.3.2).

    Servers hand header bytes over as latin-1 text; raw UTF-8 bytes (which a
    producer should have percent-encoded) are read as UTF-8 all the same.
    """
    try:
        value = value.encode("latin1").decode("utf-8")
    except UnicodeError:
        pass  # not UTF-8 bytes: keep the text as the server gave it
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise MalformedRequest(
            f"header {name[:40]!r} is not UTF-8 once percent-decoded", code="invalid_encoding"
        ) from None
