"""The HTTP API: publishing events and replaying failed ones."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import conf, failures, ingest
from .errors import BrokerUnavailable, MalformedRequest, PublishError, RateLimited, TooLarge, UnknownTopic
from .models import NAME_PATTERN, FailedEvent
from .publishing import require_topic, store
from .tokens import authenticate, require_topic_permission, spend_rate
from .topics import TopicSpec

logger = logging.getLogger(__name__)
_TOPIC_NAME = re.compile(NAME_PATTERN)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def error_response(error: PublishError) -> HttpResponse:
    headers = None
    if isinstance(error, BrokerUnavailable):
        headers = {"Retry-After": str(conf.get("RETRY_AFTER_SECONDS"))}
    elif isinstance(error, RateLimited):
        headers = {"Retry-After": "1"}  # limits count per wall-clock second
    return json_response(error.as_dict(), status=error.status, headers=headers)


@csrf_exempt  # producers authenticate with a bearer token, not a session
def publish_events(request: HttpRequest, topic: str) -> HttpResponse:
    if request.method != "POST":
        return json_response(
            {"error": {"code": "method_not_allowed", "message": "use POST"}}, status=405, headers={"Allow": "POST"}
        )
    try:
        identity = authenticate(request.headers.get("Authorization"))
        spec = _require_topic(topic)
        require_topic_permission(identity, spec.name)
        body = _read_body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        content_type = request.META.get("CONTENT_TYPE", "")
        events = ingest.parse(content_type, headers, body, max_events=conf.get("MAX_BATCH_EVENTS"))
        spend_rate(identity, len(events))
        result = store(spec, events, source=identity.name)
    except PublishError as error:
        return error_response(error)
    except DatabaseError:
        logger.exception("publish: configuration database unavailable")
        return error_response(BrokerUnavailable("the configuration database is unavailable; nothing was accepted"))
    payload: dict[str, Any] = {"accepted": result.accepted - len(result.duplicates), "ids": result.ids}
    if result.duplicates:
        payload["duplicates"] = result.duplicates
    return json_response(payload, status=202)


def _require_topic(name: str) -> TopicSpec:
    # A name no topic can have is refused before it reaches the database or the topic cache.
    if not _TOPIC_NAME.fullmatch(name):
        raise UnknownTopic(f"no topic named {name[:100]!r}")
    return require_topic(name)


def _read_body(request: HttpRequest) -> bytes:
    limit = conf.get("MAX_BODY_BYTES")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise MalformedRequest("Content-Length is not a number")
    if int(declared) > limit:
        raise TooLarge(f"the body of {declared} bytes is over the limit of {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"the body is over the limit of {limit} bytes")
    return body


def forbidden_unless_replayer(request: HttpRequest) -> HttpResponse | None:
    """A 403 answer unless the user may replay (failed events and history alike); None if they may."""
    if not (request.user.is_staff and request.user.has_perm("eventflow.replay_failedevent")):
        return json_response(
            {"error": {"code": "forbidden", "message": "you may not replay failed events"}}, status=403
        )
    return None


@login_required
@require_POST
def replay_one(request: HttpRequest, pk: int) -> HttpResponse:
    if (denied := forbidden_unless_replayer(request)) is not None:
        return denied
    row = FailedEvent.objects.select_related("consumer", "topic").filter(pk=pk).first()
    if row is None:
        return json_response({"error": {"code": "not_found", "message": f"no failed event {pk}"}}, status=404)
    try:
        failures.replay(row, request.user)
    except failures.ReplayRefused as exc:
        return json_response({"error": {"code": "not_replayable", "message": str(exc)}}, status=409)
    except Exception as exc:  # Redis down: nothing queued, the row is unchanged
        logger.warning("replay %s failed: %s", pk, exc)
        return error_response(BrokerUnavailable("the event store is unreachable; nothing was replayed"))
    return json_response({"replayed": 1, "id": row.pk, "status": FailedEvent.Status.REPLAYING}, status=202)


@login_required
@require_POST
def replay_bulk(request: HttpRequest) -> HttpResponse:
    if (denied := forbidden_unless_replayer(request)) is not None:
        return denied
    try:
        selection = _bulk_selection(request)
    except PublishError as error:
        return error_response(error)
    try:
        sent, problems = failures.replay_many(selection, request.user)
    except Exception as exc:
        logger.warning("bulk replay failed: %s", exc)
        return error_response(BrokerUnavailable("the event store is unreachable; replay stopped"))
    return json_response({"replayed": sent, "skipped": len(problems), "problems": problems[:20]}, status=202)


def _bulk_selection(request: HttpRequest):
    """Rows to replay: ``{"ids": [...]}`` or a ``consumer``/``topic`` filter (JSON or form)."""
    if request.content_type == "application/json":
        query = ingest.load_json(request.body)
        if not isinstance(query, dict):
            raise MalformedRequest("send a JSON object with 'ids', or 'consumer' and/or 'topic'")
    else:
        query = {
            "ids": request.POST.getlist("ids"),
            "consumer": request.POST.get("consumer"),
            "topic": request.POST.get("topic"),
        }
    rows = FailedEvent.objects.select_related("consumer", "topic").filter(
        status__in=[FailedEvent.Status.FAILED, FailedEvent.Status.FAILED_AGAIN]
    )
    for name in ("consumer", "topic"):
        if query.get(name) is not None and not isinstance(query[name], str):
            raise MalformedRequest(f"'{name}' must be a name")
    ids = query.get("ids") or []
    if ids:
        if not isinstance(ids, list) or not all(str(i).isdigit() for i in ids):
            raise MalformedRequest("'ids' must be a list of failed-event ids")
        return rows.filter(pk__in=[int(i) for i in ids])
    if not query.get("consumer") and not query.get("topic"):
        raise MalformedRequest("give 'ids', or a 'consumer' and/or 'topic' filter")
    if query.get("consumer"):
        rows = rows.filter(consumer__name=str(query["consumer"]))
    if query.get("topic"):
        rows = rows.filter(topic__name=str(query["topic"]))
    return rows


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: a JSON error for the API's views, Django's page elsewhere.

    Install it as ``CSRF_FAILURE_VIEW = "eventflow.api.csrf_failure"``.
    """
    match = request.resolver_match
    if match is not None and "eventflow" in match.namespaces:
        message = f"CSRF check failed: {reason}" if reason else "CSRF check failed"
        return json_response({"error": {"code": "csrf_failed", "message": message}}, status=403)
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


@csrf_exempt  # it changes nothing; a POST to a mistyped URL deserves the 404, not a CSRF page
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under the API: a JSON 404 (API clients never get an HTML page)."""
    return json_response(
        {"error": {"code": "not_found", "message": f"no API endpoint at {request.path[:200]!r}"}}, status=404
    )


def health(request: HttpRequest) -> HttpResponse:
    """Public liveness: is Redis reachable, how durable is it, is the database up."""
    from django.db import connection

    from .status import broker_status

    broker = broker_status()
    try:
        connection.ensure_connection()
        database = "ok"
    except DatabaseError:
        database = "unavailable"
    healthy = broker["reachable"] and database == "ok"
    return json_response(
        {"status": "ok" if healthy else "degraded", "redis": broker, "database": database}, 200 if healthy else 503
    )
