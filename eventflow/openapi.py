"""The API's OpenAPI 3.1 description, served at ``<api prefix>/openapi.json``.

It is built from the same limits the API enforces (``conf``, ``validation``),
so the description and the behaviour cannot drift apart in those numbers.
Paths are relative to the server URL, which is wherever the engine's URLs are
included (the project uses ``/api/v1``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from . import api, conf
from .models import NAME_PATTERN
from .validation import MAX_ATTRIBUTE_CHARS, MAX_EXTENSION_CHARS, RESERVED, RFC3339_PATTERN

JSON = "application/json"
Schema = dict[str, Any]
BINARY_HEADERS = ("ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "ce-<extension>")
BINARY_MODE = """\
Three ways to send events, chosen by Content-Type:

- plain JSON (application/json): one Event, or a Batch of them;
- CloudEvents structured mode (application/cloudevents+json) and batches
  (application/cloudevents-batch+json); any ce-* headers beside them are ignored;
- CloudEvents binary mode: a `ce-specversion: 1.0` header with any other media
  type (or none). Attributes travel as `ce-*` headers, percent-encoded UTF-8
  (they are decoded); the body is the data: JSON for application/json, any
  `+json` type or no Content-Type at all (as the SDKs send), text for `text/*`,
  base64 (`data_base64`) otherwise. The Content-Type, parameters included, is kept
  as `datacontenttype`.

A body may be sent with `Content-Encoding: gzip`; the limit applies to the
decompressed size. An event is named by its source (the producer) and id.
"""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(description: str, *, nullable: bool = False) -> Schema:
    kind: str | list[str] = ["string", "null"] if nullable else "string"
    return {"type": kind, "minLength": 1, "maxLength": MAX_ATTRIBUTE_CHARS, "description": description}


def _extension() -> Schema:
    return {
        "description": "A CloudEvents extension attribute (e.g. traceparent).",
        "oneOf": [
            {"type": "string", "maxLength": MAX_EXTENSION_CHARS},
            {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
            {"type": "boolean"},
        ],
    }


# JSON Schema and OpenAPI patterns are ECMA-262 regular expressions: ``$``, not Python's ``\Z``.
TOPIC_PATTERN = NAME_PATTERN.removesuffix(r"\Z") + "$"
EXTENSION_NAME = "^[a-z0-9]{1,20}$"
RFC3339 = "^" + RFC3339_PATTERN.pattern + "$"
BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _time(*, nullable: bool = True) -> Schema:
    return {
        "type": ["string", "null"] if nullable else "string",
        "format": "date-time",
        "pattern": RFC3339,
        "description": "RFC 3339 with a time zone.",
    }


def _not_named(*names: str) -> Schema:
    return {"not": {"enum": sorted(names)}}


def _event() -> Schema:
    return {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": _text("What happened, e.g. order.created."),
            "data": {"description": "Any JSON value (the topic may require a JSON Schema)."},
            "id": _text("The producer's own id; with the producer (source) it names the event.", nullable=True),
            "key": _text("Ordering key.", nullable=True),
            "subject": _text("CloudEvents subject.", nullable=True),
            "time": _time(),
        },
        "description": "A null optional attribute counts as absent. The broker sets source, topic and specversion.",
        # Any other name is an extension: JSON Schema applies patternProperties to named properties
        # too (data would have to be an extension value), so names are checked by propertyNames.
        "propertyNames": {"pattern": EXTENSION_NAME, **_not_named(*RESERVED)},
        "additionalProperties": _extension(),
    }


def _cloudevent() -> Schema:
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": _text("Event id; null: the broker makes one.", nullable=True),
            "source": {"description": "Any value: replaced by the producer's name."},
            "type": _text("Event type."),
            "data": {},
            "data_base64": {"type": "string", "contentEncoding": "base64", "pattern": BASE64},
            "datacontenttype": _text("Media type of data."),
            "dataschema": _text("URI of data's schema."),
            "subject": _text("CloudEvents subject.", nullable=True),
            "key": _text("Ordering key.", nullable=True),
            "partitionkey": {
                **_extension(),
                "description": "The CloudEvents partitioning extension: kept, and the ordering key unless 'key' is given.",
            },
            "time": _time(),
        },
        "propertyNames": {"anyOf": [{"const": "data_base64"}, {"pattern": EXTENSION_NAME}], **_not_named("topic")},
        "additionalProperties": _extension(),
        "allOf": [
            {"not": {"required": ["data", "data_base64"]}},
            # Without 'key', partitionkey is the ordering key, so it must be short text too.
            {"if": {"not": {"required": ["key"]}}, "then": {"properties": {"partitionkey": _text("Ordering key.")}}},
        ],
    }


def _schemas() -> dict[str, Schema]:
    batch_limit = conf.get("MAX_BATCH_EVENTS")
    return {
        "Event": _event(),
        "Batch": {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "items": _ref("Event"), "minItems": 1, "maxItems": batch_limit}},
            "additionalProperties": False,
        },
        "CloudEvent": _cloudevent(),
        "Accepted": {
            "type": "object",
            "required": ["accepted", "ids"],
            "properties": {
                "accepted": {"type": "integer", "minimum": 0, "description": "Events stored now (repeats excluded)."},
                "ids": {"type": "array", "items": {"type": "string"}},
                "duplicates": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "index": {"type": "integer", "description": "Which event of a batch."},
                    },
                }
            },
        },
        "Replayed": {
            "type": "object",
            "properties": {
                "replayed": {"type": "integer"},
                "id": {"type": "integer"},
                "status": {"type": "string"},
                "skipped": {"type": "integer"},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ReplaySelection": {
            "type": "object",
            "description": "Failed-event ids, or a consumer and/or topic filter.",
            "properties": {
                "ids": {
                    "type": ["array", "null"],
                    "items": {
                        "oneOf": [
                            {"type": "integer", "minimum": 0, "maximum": api.MAX_ROW_ID},
                            {"type": "string", "pattern": "^" + api.ROW_ID_TEXT.pattern + "$"},
                        ]
                    },
                },
                "consumer": {"type": ["string", "null"]},
                "topic": {"type": ["string", "null"]},
            },
            "anyOf": [
                {"required": ["ids"], "properties": {"ids": {"type": "array", "minItems": 1}}},
                {"required": ["consumer"], "properties": {"consumer": {"type": "string", "minLength": 1}}},
                {"required": ["topic"], "properties": {"topic": {"type": "string", "minLength": 1}}},
            ],
        },
        "Health": {
            "type": "object",
            "required": ["status", "redis", "database"],
            "properties": {
                "status": {"enum": ["ok", "degraded"]},
                "database": {"enum": ["ok", "down"]},
                "redis": {
                    "type": "object",
                    "required": ["reachable"],
                    "properties": {
                        "reachable": {"type": "boolean"},
                        "durability": {"enum": ["none", "everysec", "always", "no", "snapshots", "unknown"]},
                    },
                },
            },
        },
    }


def _answer(description: str, schema: str, *, retry_after: bool = False) -> Schema:
    answer: Schema = {"description": description, "content": {JSON: {"schema": _ref(schema)}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
    return answer


def _errors(*statuses: tuple[int, str]) -> dict[str, Schema]:
    return {str(status): _answer(description, "Error") for status, description in statuses}


def _publish() -> Schema:
    events = {"oneOf": [_ref("Event"), _ref("Batch")]}
    batch = {"type": "array", "items": _ref("CloudEvent"), "minItems": 1, "maxItems": conf.get("MAX_BATCH_EVENTS")}
    return {
        "post": {
            "operationId": "publishEvents",
            "summary": "Publish one event or an all-or-nothing batch to a topic.",
            "description": BINARY_MODE,
            "x-cloudevents-binary-mode": {"headers": list(BINARY_HEADERS), "body": "the event's data"},
            "security": [{"producerToken": []}],
            "parameters": [
                {"name": "topic", "in": "path", "required": True, "schema": {"type": "string", "pattern": TOPIC_PATTERN}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": events},
                    "application/cloudevents+json": {"schema": _ref("CloudEvent")},
                    "application/cloudevents-batch+json": {"schema": batch},
                    "text/plain": {"schema": {"description": "CloudEvents binary mode only (ce-* headers)."}},
                    "application/octet-stream": {
                        "schema": {"description": "CloudEvents binary mode only (ce-* headers); kept as data_base64."}
                    },
                },
            },
            "responses": {
                "202": _answer("Stored in Redis before this answer.", "Accepted"),
                **_errors(
                    (400, "Malformed JSON, not UTF-8, empty body or repeated keys."),
                    (401, "Missing, unknown or revoked token."),
                    (403, "The producer may not publish to this topic, or the topic is inactive."),
                    (404, "No such topic."),
                    (405, "Only POST."),
                    (413, "An event, the body (decompressed, for gzip) or the batch is over its limit."),
                    (415, "Unsupported content type or Content-Encoding."),
                    (422, "A well-formed but invalid event; the message names which and why."),
                ),
                "429": _answer("Over the producer's rate limit.", "Error", retry_after=True),
                "503": _answer(
                    "Redis is unreachable (broker_unavailable), full (redis_full) or may evict keys "
                    "(redis_evicting); nothing was accepted.",
                    "Error",
                    retry_after=True,
                ),
            },
        }
    }


def _replay(operation: str, summary: str, body: bool) -> Schema:
    post: Schema = {
        "operationId": operation,
        "summary": summary,
        "description": "Staff with the 'replay failed events' permission, a session and a CSRF token.",
        "security": [{"session": [], "csrfToken": []}],
        "responses": {
            "202": _answer("Queued for the failed event's consumer only.", "Replayed"),
            "302": {"description": "Not logged in: redirected to the login page."},
            **_errors(
                (400, "A malformed selection."),
                (403, "No permission, or no CSRF token."),
                (404, "No such failed event."),
                (405, "Only POST."),
                (409, "Not replayable now (already replaying, resolved or discarded)."),
            ),
            "503": _answer("Redis is unreachable; nothing was replayed.", "Error", retry_after=True),
        },
    }
    if body:
        post["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref("ReplaySelection")}}}
    else:
        post["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    return {"post": post}


def _health() -> Schema:
    def operation(method: str) -> Schema:
        return {
            "operationId": f"health{method.title()}",
            "summary": "Is Redis reachable, how durable is it, is the database up (no login).",
            "security": [],
            "responses": {"200": _answer("Healthy.", "Health"), "503": _answer("Degraded.", "Health")},
        }

    return {"get": operation("get"), "head": operation("head")}


def describe(server_url: str) -> Schema:
    """Return the OpenAPI 3.1 document for the API served under ``server_url``."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "EventFlow API", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": {
            "/topics/{topic}/events": _publish(),
            "/failed-events/{id}/replay": _replay("replayFailedEvent", "Replay one failed event.", body=False),
            "/failed-events/replay": _replay("replayFailedEvents", "Replay failed events by ids or filter.", True),
            "/health": _health(),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description.",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "producerToken": {"type": "http", "scheme": "bearer", "description": "A producer's token."},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
        },
    }


@api.allow_methods("GET", "HEAD")
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The description, public like the API's own error documentation."""
    server_url = request.path.rsplit("/", 1)[0]
    return api.json_response(describe(server_url))
