"""The API's OpenAPI 3.1 description, served at ``<api prefix>/openapi.json``.

It is built from the same limits the API enforces (``conf``, ``validation``),
so the description and the behaviour cannot drift apart in those numbers.
Paths are relative to the server URL, which is wherever the engine's URLs are
included (the project uses ``/api/v1``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from . import api, conf
from .models import NAME_PATTERN
from .validation import MAX_ATTRIBUTE_CHARS, MAX_EXTENSION_CHARS

JSON = "application/json"
Schema = dict[str, Any]


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


def _event() -> Schema:
    return {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": _text("What happened, e.g. order.created."),
            "data": {"description": "Any JSON value (the topic may require a JSON Schema)."},
            "id": _text("The producer's own id; repeated ids within the dedup window are stored once.", nullable=True),
            "key": _text("Ordering key.", nullable=True),
            "subject": _text("CloudEvents subject.", nullable=True),
            "time": {"type": ["string", "null"], "format": "date-time", "description": "RFC 3339 with a time zone."},
        },
        "description": "A null optional attribute counts as absent.",
        "patternProperties": {"^[a-z0-9]{1,20}$": _extension()},
        "additionalProperties": False,
    }


def _cloudevent() -> Schema:
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": _text("Event id."),
            "source": {"type": "string", "description": "Replaced by the producer's name."},
            "type": _text("Event type."),
            "data": {},
            "data_base64": {"type": "string", "contentEncoding": "base64"},
            "datacontenttype": _text("Media type of data."),
            "subject": _text("CloudEvents subject."),
            "partitionkey": _text("Ordering key."),
            "time": {"type": "string", "format": "date-time"},
        },
        "patternProperties": {"^[a-z0-9]{1,20}$": _extension()},
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
                    "type": "array",
                    "items": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]},
                },
                "consumer": {"type": "string"},
                "topic": {"type": "string"},
            },
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
    batch = {"type": "array", "items": _ref("CloudEvent"), "minItems": 1}
    return {
        "post": {
            "operationId": "publishEvents",
            "summary": "Publish one event or an all-or-nothing batch to a topic.",
            "security": [{"producerToken": []}],
            "parameters": [
                {"name": "topic", "in": "path", "required": True, "schema": {"type": "string", "pattern": NAME_PATTERN}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": events},
                    "application/cloudevents+json": {"schema": _ref("CloudEvent")},
                    "application/cloudevents-batch+json": {"schema": batch},
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
                    (413, "An event, the body or the batch is over its limit."),
                    (415, "Unsupported content type."),
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
    return {
        "get": {
            "operationId": "health",
            "summary": "Is Redis reachable, how durable is it, is the database up (no login).",
            "security": [],
            "responses": {"200": _answer("Healthy.", "Health"), "503": _answer("Degraded.", "Health")},
        }
    }


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


@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The description, public like the API's own error documentation."""
    server_url = request.path.rsplit("/", 1)[0]
    return api.json_response(describe(server_url))
