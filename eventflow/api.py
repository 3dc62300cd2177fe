"""The HTTP API: publishing events and replaying failed ones."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson
import redis
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import failures, ingest
from . import publish_contract as contract
from .errors import BrokerUnavailable, MalformedRequest, PublishError, ReplayRefused
from .models import FailedEvent
from .permissions import can_edit_and_replay, can_replay
from .publishing import store
from .tokens import authenticate, require_topic_permission, spend_rate

logger = logging.getLogger(__name__)
View = Callable[..., HttpResponse]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def error_response(error: Exception) -> HttpResponse:
    """A refusal as JSON, mapped once in ``publish_contract.error_answer``."""
    return answer_response(contract.error_answer(error))


def answer_response(answer: contract.Answer) -> HttpResponse:
    return json_response(answer.payload, status=answer.status, headers=answer.headers or None)


@csrf_exempt  # producers authenticate with a bearer token, not a session
def publish_events(request: HttpRequest, topic: str) -> HttpResponse:
    """The Django door to ``publish_contract``: the same steps as ``asgi_publish``, in the same order."""
    if request.method != "POST":
        return json_response(
            {"error": {"code": "method_not_allowed", "message": "use POST"}}, status=405, headers={"Allow": "POST"}
        )
    try:
        identity = authenticate(request.headers.get("Authorization"))
        spec = contract.named_topic(topic)
        require_topic_permission(identity, spec.name)
        body = contract.checked_body(
            request.META.get("CONTENT_LENGTH"), request.read, request.headers.get("Content-Encoding")
        )
        headers = {name.lower(): value for name, value in request.headers.items()}
        events = contract.parse_events(request.META.get("CONTENT_TYPE", ""), headers, body)
        spend_rate(identity, len(events))
        result = store(spec, events, source=identity.name)
    except (PublishError, DatabaseError) as error:
        if isinstance(error, DatabaseError):
            logger.exception("publish: configuration database unavailable")
        return error_response(error)
    return answer_response(contract.accepted(result))


def forbidden_unless_replayer(request: HttpRequest) -> HttpResponse | None:
    """A 403 answer unless the user may replay (failed events and history alike); None if they may."""
    if not can_replay(request.user):
        return json_response(
            {"error": {"code": "forbidden", "message": "you may not replay failed events"}}, status=403
        )
    return None


def forbidden_unless_editor(request: HttpRequest) -> HttpResponse | None:
    """A 403 answer unless the user may edit a failed event's data and replay the copy; None if they may."""
    if not can_edit_and_replay(request.user):
        return json_response(
            {"error": {"code": "forbidden", "message": "you may not edit and replay failed events"}}, status=403
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
    except ReplayRefused as exc:
        return error_response(exc)
    except redis.RedisError as exc:  # Redis down: nothing queued, the row is unchanged
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
    except redis.RedisError as exc:  # rows of the chunk it was on are put back; earlier chunks went
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
    ingest.refuse_nul(query)  # a form's fields too: PostgreSQL refuses a NUL in a query
    rows = FailedEvent.objects.replayable().select_related("consumer", "topic")
    for name in ("consumer", "topic"):
        if query.get(name) is not None and not isinstance(query[name], str):
            raise MalformedRequest(f"'{name}' must be a name")
    ids = query.get("ids") or []
    if ids:
        if not isinstance(ids, list) or not all(_is_row_id(i) for i in ids):
            raise MalformedRequest("'ids' must be a list of failed-event ids")
        return rows.filter(pk__in=[int(i) for i in ids])
    if not query.get("consumer") and not query.get("topic"):
        raise MalformedRequest("give 'ids', or a 'consumer' and/or 'topic' filter")
    if query.get("consumer"):
        rows = rows.filter(consumer__name=str(query["consumer"]))
    if query.get("topic"):
        rows = rows.filter(topic__name=str(query["topic"]))
    return rows


MAX_ROW_ID = 2**63 - 1  # a database's big integer; past it the query itself would fail
ROW_ID_TEXT = re.compile(r"[0-9]{1,18}")


def _is_row_id(value: Any) -> bool:
    """A failed-event id as the form or JSON sends it: an integer, or up to 18 ASCII digits."""
    if isinstance(value, str):
        return ROW_ID_TEXT.fullmatch(value) is not None
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ROW_ID


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


def allow_methods(*methods: str) -> Callable[[View], View]:
    """Answer any other method with a JSON 405 naming the allowed ones (Django's own is HTML)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                message = f"use {' or '.join(methods)}"
                return json_response(
                    {"error": {"code": "method_not_allowed", "message": message}},
                    status=405,
                    headers={"Allow": ", ".join(methods)},
                )
            return view(request, *args, **kwargs)

        return only

    return decorate


@csrf_exempt  # a POST gets the 405, not a CSRF page
@allow_methods("GET", "HEAD")
def health(request: HttpRequest) -> HttpResponse:
    """Public liveness: is Redis reachable, how durable is it, may it evict, is the database up.

    An evicting Redis is degraded (503): it can lose accepted events. Its
    warnings (memory near maxmemory, a policy it will not tell) stay 200.
    """
    from .database import database_status
    from .status import broker_status

    broker = broker_status()
    database, _ = database_status()  # a real query: a dropped connection still looks open
    evicting = any(p["level"] == "error" for p in broker.get("problems", ()))
    healthy = broker["reachable"] and database == "ok" and not evicting
    return json_response(
        {"status": "ok" if healthy else "degraded", "redis": broker, "database": database}, 200 if healthy else 503
    )
