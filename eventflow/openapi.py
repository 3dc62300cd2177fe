"""The API's OpenAPI 3.1 description, served at ``<api prefix>/openapi.json``.

It is built from the same limits the API enforces (``conf``, ``validation``),
so the description and the behaviour cannot drift apart in those numbers.
Paths are relative to the server URL, which is wherever the engine's URLs are
included (the project uses ``/api/v1``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from . import api, conf, edits
from .models import NAME_PATTERN, Replay
from .replay_api import MAX_REASON
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
        **_replay_schemas(),
        **_edit_schemas(),
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


def _count() -> Schema:
    return {"type": "integer", "minimum": 0}


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


def _reason(description: str) -> Schema:
    return {"type": ["string", "null"], "maxLength": MAX_REASON, "description": description}


def _replay_schemas() -> dict[str, Schema]:
    """The replay jobs' request, plan (preview) and progress (``replay_api``, ``replays.Plan``/``Progress``)."""
    field = {
        "type": "object",
        "required": ["path", "value"],
        "properties": {"path": {"type": "string", "minLength": 1}, "value": {"description": "Any JSON value."}},
        "additionalProperties": False,
    }
    common = {
        "replay": {**_nullable("integer"), "description": "The job's id; null on a dry run."},
        "source": {"enum": Replay.Source.values},
        "state": {"enum": Replay.State.values},
        "consumer": {"type": "string"},
        "topic": {"type": "string"},
        "from": {"type": "string", "description": "First stream id (or failed-event id) of the range."},
        "to": {"type": "string", "description": "Last one, fixed when the replay starts: never open-ended."},
        "filters": {"type": "string", "description": "The filters, in words ('every event' without any)."},
        "rate": {**_nullable("number"), "description": "Events per second at most; null: no limit."},
        "reason": {"type": "string"},
    }
    return {
        "ReplayRequest": {
            "type": "object",
            "required": ["topic"],
            "description": "Rewind one consumer over a topic's retained history ('history', from 'from' to 'to' "
            "or the newest event when it starts), or send its failed events again ('failed'). "
            "A dry run only previews.",
            "properties": {
                "topic": {"type": "string", "minLength": 1, "description": "A topic the consumer subscribes to."},
                "source": {"enum": [Replay.Source.HISTORY, Replay.Source.FAILED]},
                "from": {
                    "type": "string",
                    "description": "History: a stream id (1712345678901-0) or an ISO 8601 time.",
                },
                "to": {"type": ["string", "null"], "description": "Optional end, as 'from'."},
                "types": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200}},
                        {"type": "string", "description": "Comma-separated."},
                        {"type": "null"},
                    ],
                    "description": "Event types (globs such as order.*).",
                },
                "key": {"type": ["string", "null"], "maxLength": 200},
                "field": {
                    "oneOf": [field, {"type": "null"}, {"const": ""}, {"const": {}}],
                    "description": 'Only events whose data has this value at this path: {"path": "customer.tier", '
                    '"value": "gold"}.',
                },
                "rate": {
                    "oneOf": [
                        {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
                        {"type": "string", "description": "A number, as text."},
                        {"type": "null"},
                    ]
                },
                "dry_run": {"type": "boolean"},
                "reason": _reason("Why: required unless dry_run; kept as the audit record."),
            },
            "additionalProperties": False,
        },
        "ReplayPlan": {
            "type": "object",
            "required": ["replay", "dry_run", "source", "consumer", "topic", "from", "to", "matching", "filters"],
            "properties": {
                **common,
                "dry_run": {"type": "boolean"},
                "matching": _count(),
                "first_match": _nullable("string"),
                "first_match_time": _time(),
                "last_match": _nullable("string"),
                "last_match_time": _time(),
                "first_retained": {**_nullable("string"), "description": "The stream's oldest entry now."},
                "retention_cut": {**_nullable("string"), "description": "What retention already cut of the range."},
            },
        },
        "ReplayProgress": {
            "type": "object",
            "required": ["replay", "source", "state", "consumer", "topic", "matched", "sent", "handled", "failed"],
            "properties": {
                **common,
                "replay": {"type": "integer"},
                "matched": _count(),
                "sent": _count(),
                "handled": _count(),
                "failed": {**_count(), "description": "Dead-lettered again."},
                "percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "note": _nullable("string"),
                "requested_by": _nullable("string"),
                "cancelled_by": _nullable("string"),
                "created_at": _time(nullable=False),
                "started_at": _time(),
                "ended_at": _time(),
            },
        },
    }


def _edit_schemas() -> dict[str, Schema]:
    """Edit-and-replay's request and answer (``replay_api.edit_and_replay``, ``edits.Plan``)."""
    change = {
        "type": "object",
        "required": ["path", "op"],
        "properties": {
            "path": {"type": "string", "description": "A JSON Pointer into the event, e.g. /data/customer/tier."},
            "op": {"enum": ["changed", "added", "removed"]},
            "old": {"description": "The value before (absent when added)."},
            "new": {"description": "The value after (absent when removed)."},
        },
    }
    return {
        "EditRequest": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"description": "The corrected data: any JSON value the topic's schema accepts."},
                "reason": _reason("Why: required unless dry_run; kept with the replay as the audit record."),
                "dry_run": {"type": "boolean", "description": "Check it and show the diff; send nothing."},
            },
            "additionalProperties": False,
        },
        "Edit": {
            "type": "object",
            "required": ["edit", "replay", "dry_run", "failed_event", "consumer", "topic", "changes", "diff"],
            "properties": {
                "edit": {**_nullable("integer"), "description": "The edit's id; null on a dry run."},
                "replay": {
                    **_nullable("integer"),
                    "description": "The replay job that sends the copy (GET /replays/{id}).",
                },
                "dry_run": {"type": "boolean"},
                "state": {"enum": Replay.State.values},
                "reason": {"type": "string"},
                "failed_event": {"type": "integer"},
                "consumer": {"type": "string", "description": "The one consumer the copy goes to."},
                "topic": {"type": "string"},
                "event_id": {"type": "string"},
                "changes": {"type": "integer", "minimum": 1, "description": "How many paths changed."},
                "diff": {"type": "array", "items": change, "maxItems": edits.MAX_DIFF_ENTRIES},
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


def _staff(operation: str, summary: str, permission: str, responses: dict[str, Schema]) -> Schema:
    """An operation for logged-in staff with ``permission``; a POST also takes the CSRF token."""
    return {
        "operationId": operation,
        "summary": summary,
        "description": f"Staff with the '{permission}' permission, a session (and on POST a CSRF token).",
        "security": [{"session": [], "csrfToken": []}],
        "responses": {"302": {"description": "Not logged in: redirected to the login page."}, **responses},
    }


def _path_id(description: str) -> list[Schema]:
    return [{"name": "id", "in": "path", "required": True, "description": description, "schema": {"type": "integer"}}]


def _json_body(schema: str) -> Schema:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


def _replay_jobs() -> dict[str, Schema]:
    replay = "replay failed events"
    unreachable = _answer("Redis is unreachable; nothing was started.", "Error")
    create = _staff(
        "createReplay",
        "Rewind one consumer over retained history, or replay its failed events: a bounded, throttled job.",
        replay,
        {
            "200": _answer("The preview (dry run): what would be sent.", "ReplayPlan"),
            "202": {
                **_answer("Started: the job and its count.", "ReplayPlan"),
                "headers": {"Location": {"description": "The job: /replays/{id}.", "schema": {"type": "string"}}},
            },
            **_errors(
                (400, "A malformed request: the message names the field."),
                (403, "No permission, or no CSRF token."),
                (404, "No such consumer or topic."),
                (409, "The consumer does not subscribe to the topic."),
            ),
            "503": unreachable,
        },
    )
    create["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    create["requestBody"] = _json_body("ReplayRequest")
    read = _staff(
        "getReplay",
        "A replay job's state and counts.",
        replay,
        {
            "200": _answer("The job.", "ReplayProgress"),
            **_errors((403, "No permission."), (404, "No such replay.")),
        },
    )
    cancel = _staff(
        "cancelReplay",
        "Stop a planned or running replay now; what no worker took yet is taken back.",
        replay,
        {
            "200": _answer("Cancelled: the job as it ended.", "ReplayProgress"),
            **_errors((403, "No permission, or no CSRF token."), (404, "No such replay."), (409, "It already ended.")),
        },
    )
    read["parameters"] = cancel["parameters"] = _path_id("The replay job's id.")
    return {
        "/consumers/{name}/replays": {"post": create},
        "/replays/{id}": {"get": read},
        "/replays/{id}/cancel": {"post": cancel},
    }


def _edit() -> Schema:
    post = _staff(
        "editAndReplayFailedEvent",
        "Correct a failed event's data and replay the corrected copy to its consumer only.",
        "edit a failed event's data and replay the corrected copy",
        {
            "200": _answer("The diff (dry run); nothing was sent.", "Edit"),
            "202": {
                **_answer("Sent as a replay job of one event; the original stays as it was.", "Edit"),
                "headers": {
                    "Location": {"description": "The replay job: /replays/{id}.", "schema": {"type": "string"}}
                },
            },
            **_errors(
                (400, "Malformed JSON, no 'data', or no 'reason'."),
                (403, "No permission, or no CSRF token."),
                (404, "No such failed event."),
                (409, "Not replayable now, or its consumer no longer subscribes to the topic."),
                (413, "The corrected event (or the body) is over its limit."),
                (422, "The topic's schema refuses the data, the data is unchanged, or the event cannot be edited."),
            ),
            "503": _answer("Redis is unreachable; nothing was replayed.", "Error"),
        },
    )
    post["description"] += (
        " The original event (its stream entry and the failed event's envelope) is never changed; the edit "
        "is audited with who, when, why and the diff."
    )
    post["parameters"] = _path_id("The failed event's id.")
    post["requestBody"] = _json_body("EditRequest")
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
            "/failed-events/{id}/edits": _edit(),
            **_replay_jobs(),
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
