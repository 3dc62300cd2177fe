"""Trace context across hops: W3C ``traceparent`` and a ``causationid``, as CloudEvents extensions.

1. Publish: an event keeps the ``traceparent`` (and ``tracestate``) it was
   given as extension attributes (CloudEvents' distributed-tracing extension).
   Over HTTP, a ``traceparent`` *request header* goes to every event of the
   request that has none of its own; a malformed header is ignored, as W3C
   Trace Context asks of a receiver.
2. Handle: while a handler runs (``handlers.invoke`` calls ``handle``), an
   event it publishes through the Python API inherits, unless it sets its own:
   ``causationid`` = the handled event's id, and a ``traceparent`` in the
   handled event's trace with a new parent id (the handler's span); and the
   handled event remembers it (``keys.caused``), so its causal tree can be drawn.
3. Webhooks send the event's ``traceparent`` and ``tracestate`` as HTTP headers.
4. With the OpenTelemetry API installed, publishing and handling are spans in
   the event's trace (``span``); without it nothing is imported or paid for.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import redis

from . import conf, keys
from .connection import get_redis

if TYPE_CHECKING:
    from .events import Event

try:  # optional: spans only where the application installed OpenTelemetry
    from opentelemetry import trace as _otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - the usual case
    _otel_trace = None

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
CAUSATIONID = "causationid"
# Version 00: trace id, parent id, flags, in lowercase hex; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})")
MAX_TRACESTATE_CHARS = 512  # W3C: at least 512 must be propagated; longer ones may be dropped

MAX_CHILDREN = 1000  # events remembered per cause, for its causal tree
logger = logging.getLogger(__name__)

_handling: ContextVar[Event | None] = ContextVar("eventflow_handling", default=None)
_consuming: ContextVar[str] = ContextVar("eventflow_consuming", default="")
_NO_SPAN = nullcontext()


def valid_traceparent(value: Any) -> bool:
    return isinstance(value, str) and _TRACEPARENT.fullmatch(value) is not None


def trace_id(traceparent: str) -> str:
    """The trace id of a valid ``traceparent``."""
    return traceparent[3:35]


def child_of(traceparent: str, parent_id: str | None = None) -> str:
    """A valid ``traceparent`` in the same trace, with ``parent_id`` (default: a new random one) as its parent."""
    return f"{traceparent[:36]}{parent_id or new_parent_id()}{traceparent[52:]}"  # "00-<trace id>-", "-<flags>"


def new_parent_id() -> str:
    """16 lowercase hex digits, not all zero (W3C).

    From ``random`` (reseeded in a forked child), as OpenTelemetry's SDK makes
    span ids: an id needs to be unlikely to repeat, not unguessable, and this
    costs no system call per published event.
    """
    return "%016x" % (random.getrandbits(64) or 1)


# --- 1. publish over HTTP ------------------------------------------------------------


def from_headers(events: list[dict], headers: Any) -> list[dict]:
    """Give each event without its own trace context the request's ``traceparent`` / ``tracestate``."""
    parent = (headers.get(TRACEPARENT) or "").strip()  # HTTP allows spaces around a header's value
    if not valid_traceparent(parent):
        return events
    state = headers.get(TRACESTATE)
    for event in events:
        if TRACEPARENT not in event:
            event[TRACEPARENT] = parent
            if state and len(state) <= MAX_TRACESTATE_CHARS and TRACESTATE not in event:
                event[TRACESTATE] = state
    return events


# --- 2. events published from inside a handler -----------------------------------------


def handle(handler: Callable[[Event], object], event: Event) -> None:
    """Call ``handler(event)`` as the event this context handles (and in a span, with OpenTelemetry).

    On the delivery hot path: without OpenTelemetry it costs one context
    variable set and reset per event.
    """
    token = _handling.set(event)
    try:
        if _otel_trace is None:
            handler(event)
        else:
            with handling_span(event):
                handler(event)
    finally:
        _handling.reset(token)


def handled_event() -> Event | None:
    """The event whose handler is running in this context, if any."""
    return _handling.get()


@contextmanager
def consuming(consumer: str) -> Iterator[None]:
    """Name the consumer whose handlers run in this block (the worker sets it around a batch)."""
    token = _consuming.set(consumer)
    try:
        yield
    finally:
        _consuming.reset(token)


def remember_children(topic: str, events: list[dict], stream_ids: list[str]) -> None:
    """Note, under the handled event, the events its handler just stored (for the causal tree).

    Best effort: the events are stored already, so a failure here is logged, not raised.
    """
    cause = _handling.get()
    if cause is None:
        return
    consumer, cause_id = _consuming.get(), cause.id
    caused = [sid for event, sid in zip(events, stream_ids) if sid and event.get(CAUSATIONID) == cause_id]
    entries = [f"{consumer}|{topic}|{sid}" for sid in caused]
    if not entries:
        return
    key = keys.caused(cause.topic, cause.id)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.rpush(key, *entries)
        pipe.ltrim(key, -MAX_CHILDREN, -1)
        pipe.expire(key, conf.get("DEDUP_WINDOW"))
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("could not note the events caused by %s: %s", cause.id, exc)


def inherit(events: list[dict]) -> list[dict]:
    """Fill in ``causationid`` and ``traceparent`` of events published while a handler runs."""
    cause = _handling.get()
    if cause is None:
        return _from_current_span(events)
    parent = cause.extension(TRACEPARENT)
    parent = parent if valid_traceparent(parent) else None
    state = cause.extension(TRACESTATE) if parent is not None else None
    span_id = _current_span_id()
    for event in events:
        event.setdefault(CAUSATIONID, cause.id)
        if parent is not None and TRACEPARENT not in event:
            event[TRACEPARENT] = child_of(parent, span_id)
            if state is not None:
                event.setdefault(TRACESTATE, state)
    return events


# --- 3. webhooks -------------------------------------------------------------------------


def headers_for(event: Event) -> dict[str, str]:
    """The W3C trace headers an event's webhook request carries (none if it has no valid traceparent)."""
    parent = event.extension(TRACEPARENT)
    if not valid_traceparent(parent):
        return {}
    headers = {TRACEPARENT: parent}
    state = event.extension(TRACESTATE)
    if isinstance(state, str) and state:
        headers[TRACESTATE] = state
    return headers


# --- 4. OpenTelemetry, when installed ----------------------------------------------------


def span(name: str, traceparent: str | None = None, **attributes: Any) -> Any:
    """A context manager: an OpenTelemetry span (child of ``traceparent`` if valid), or nothing at all."""
    if _otel_trace is None:
        return _NO_SPAN
    return _span(name, traceparent, attributes)


def handling_span(event: Event) -> Any:
    """The span around one handler call (a no-op without OpenTelemetry)."""
    if _otel_trace is None:
        return _NO_SPAN
    attributes = {"messaging.system": "eventflow", "messaging.destination.name": event.topic}
    attributes["messaging.message.id"] = event.id
    return _span(f"{event.topic} process", event.extension(TRACEPARENT), attributes)


@contextmanager
def _span(name: str, traceparent: str | None, attributes: dict[str, Any]) -> Iterator[Any]:
    context = None
    if valid_traceparent(traceparent):
        context = TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent})
    tracer = _otel_trace.get_tracer("eventflow")
    with tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        yield current


def _from_current_span(events: list[dict]) -> list[dict]:
    """Outside a handler, an event published inside an OpenTelemetry span joins its trace."""
    if _otel_trace is None:
        return events
    context = _otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return events
    parent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    for event in events:
        event.setdefault(TRACEPARENT, parent)
    return events


def _current_span_id() -> str | None:
    """The running OpenTelemetry span's id in hex (the handler's span), or None without one."""
    if _otel_trace is None:
        return None
    context = _otel_trace.get_current_span().get_span_context()
    return f"{context.span_id:016x}" if context.is_valid else None
