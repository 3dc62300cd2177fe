"""The replay jobs' HTTP API: plan (dry run), start, read and cancel; and edit-and-replay.

Same rules as failed-event replay (``api.replay_one``): a logged-in staff user
with the ``eventflow.replay_failedevent`` permission (editing a failed event's
data before replaying it: ``eventflow.edit_failedevent_data``), and Django's
CSRF check on every POST. The rule of what a request means lives in ``read_request`` and
``eventflow.replays``; the dashboard's form calls the same functions.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import redis
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET, require_POST

from . import edits, ingest, replays
from . import publish_contract as contract
from .api import error_response, forbidden_unless_editor, forbidden_unless_replayer, json_response
from .errors import (
    BrokerUnavailable,
    Conflict,
    MalformedRequest,
    NotFound,
    PublishError,
    UnknownConsumer,
    UnknownTopic,
)
from .models import Consumer, FailedEvent, FailedEventEdit, Topic

logger = logging.getLogger(__name__)

MAX_REASON = 2000
_FIELDS = {"topic", "from", "to", "types", "key", "field", "rate", "dry_run", "reason", "source"}
_EDIT_FIELDS = {"data", "reason", "dry_run"}


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """A replay asked for, checked: everything ``plan`` and ``start`` need."""

    consumer: Consumer
    topic: Topic
    source: str
    start: tuple[int, int]
    end: tuple[int, int] | None
    filters: replays.Filters
    rate: float | None
    dry_run: bool
    reason: str

    def plan(self) -> replays.Plan:
        if self.source == replays.Source.FAILED:
            return replays.plan_failed(self.consumer, self.topic, self.filters)
        return replays.plan_history(self.consumer, self.topic, self.start, self.end, self.filters)


def read_request(consumer_name: str, query: Any) -> ReplayRequest:
    """Check a replay request (a JSON object's values); raise a PublishError naming the first problem."""
    if not isinstance(query, dict):
        raise MalformedRequest('send a JSON object: {"topic", "from", "reason", ...}')
    if unknown := sorted(set(query) - _FIELDS):
        raise MalformedRequest(f"unknown field {unknown[0]!r}; expected {', '.join(sorted(_FIELDS))}")
    named = Consumer.objects.filter(name=consumer_name).prefetch_related("topics")
    consumer = None if "\x00" in consumer_name else named.first()
    if consumer is None:  # (a NUL names nothing, and PostgreSQL refuses it in a query)
        raise UnknownConsumer(f"no consumer named {consumer_name[:100]!r}")
    topic = _topic(consumer, query.get("topic"))
    source = query.get("source", replays.Source.HISTORY)
    if source not in replays.Source.values:
        raise MalformedRequest("'source' is 'history' (the topic's retained events) or 'failed' (failed events)")
    history = source == replays.Source.HISTORY
    start = replays.bound(query.get("from"), name="from", end=False) if history else (0, 0)
    end = replays.bound(query["to"], name="to", end=True) if history and query.get("to") not in (None, "") else None
    if end is not None and end < start:
        raise MalformedRequest("'to' is before 'from'", code="bad_to")
    dry_run = query.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise MalformedRequest("'dry_run' is true or false")
    return ReplayRequest(
        consumer=consumer,
        topic=topic,
        source=source,
        start=start,
        end=end,
        filters=_filters(consumer, query),
        rate=_rate(query.get("rate")),
        dry_run=dry_run,
        reason=_reason(query.get("reason"), required=not dry_run),
    )


def _topic(consumer: Consumer, name: Any) -> Topic:
    if not isinstance(name, str) or not name:
        raise MalformedRequest("'topic' must be the name of a topic the consumer subscribes to")
    topic = Topic.objects.filter(name=name).first()
    if topic is None:
        raise UnknownTopic(f"no topic named {name[:100]!r}")
    if topic not in consumer.topics.all():
        raise Conflict(
            f"consumer {consumer.name!r} does not subscribe to {name!r}: a replay goes only to a subscriber",
            code="not_subscribed",
        )
    return topic


def _filters(consumer: Consumer, query: dict) -> replays.Filters:
    types = query.get("types") or []
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    if not isinstance(types, list) or not all(isinstance(t, str) and 0 < len(t) <= 200 for t in types):
        raise MalformedRequest("'types' is a list of event types (globs such as 'order.*' allowed)")
    key = query.get("key") or ""
    if not isinstance(key, str) or len(key) > 200:
        raise MalformedRequest("'key' is an event key (a string of at most 200 characters)")
    path, value = _field(query.get("field"))
    return replays.Filters(
        types=tuple(types),
        key=key,
        field_path=path,
        field_value=value,
        consumer_types=tuple(consumer.type_patterns()),
    )


def _field(spec: Any) -> tuple[str, Any]:
    if spec in (None, "", {}):
        return "", None
    if not isinstance(spec, dict) or set(spec) != {"path", "value"} or not isinstance(spec["path"], str):
        raise MalformedRequest('\'field\' is {"path": "customer.tier", "value": "gold"} (a path inside data)')
    path = spec["path"].strip().removeprefix("data.")
    if not path or len(path) > 200 or any(not part for part in path.split(".")):
        raise MalformedRequest("'field.path' is a dotted path inside the event's data, e.g. 'customer.tier'")
    return path, spec["value"]


def _rate(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedRequest("'rate' is a number of events per second, above 0", code="bad_rate")
    try:
        rate = float(value)
    except ValueError:
        raise MalformedRequest("'rate' is a number of events per second, above 0", code="bad_rate") from None
    if not math.isfinite(rate) or rate <= 0 or rate > 1_000_000:
        raise MalformedRequest("'rate' must be above 0 and at most 1,000,000 events per second", code="bad_rate")
    return rate


def _reason(value: Any, *, required: bool) -> str:
    reason = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise MalformedRequest("'reason' is a text", code="reason_required")
    if required and not reason:
        raise MalformedRequest("say why in 'reason': every replay is audited with it", code="reason_required")
    if len(reason) > MAX_REASON:
        raise MalformedRequest(f"'reason' is over {MAX_REASON} characters", code="reason_too_long")
    return reason


@dataclass(frozen=True, slots=True)
class EditRequest:
    """An edit-and-replay asked for, checked: the corrected data, why, and whether only to preview it."""

    data: Any
    reason: str
    dry_run: bool


def read_edit(query: Any) -> EditRequest:
    """Check an edit request (``{"data", "reason", "dry_run"?}``); raise a PublishError naming the first problem."""
    if not isinstance(query, dict):
        raise MalformedRequest('send a JSON object: {"data": <the corrected data>, "reason": "..."}')
    if unknown := sorted(set(query) - _EDIT_FIELDS):
        raise MalformedRequest(f"unknown field {unknown[0]!r}; expected {', '.join(sorted(_EDIT_FIELDS))}")
    if "data" not in query:
        raise MalformedRequest("give the corrected data in 'data' (any JSON value)", code="missing_data")
    dry_run = query.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise MalformedRequest("'dry_run' is true or false")
    return EditRequest(data=query["data"], reason=_reason(query.get("reason"), required=not dry_run), dry_run=dry_run)


def plan_or_send_edit(row: FailedEvent, asked: EditRequest, user: Any) -> tuple[edits.Plan, FailedEventEdit | None]:
    """The checked edit (its diff), and the edit sent when it is not a dry run."""
    checked = edits.plan(row, asked.data)
    if asked.dry_run:
        return checked, None
    return checked, edits.send(checked, user, asked.reason)


def plan_or_start(request: ReplayRequest, user: Any) -> tuple[replays.Plan, replays.Replay | None]:
    """The preview, and the job when it is not a dry run."""
    plan = request.plan()
    if request.dry_run:
        return plan, None
    job = replays.start(plan, request.consumer, request.topic, user=user, reason=request.reason, rate=request.rate)
    return plan, job


# --- views -------------------------------------------------------------------------


@login_required
@require_POST
def create_replay(request: HttpRequest, name: str) -> HttpResponse:
    """``POST consumers/<name>/replays``: 202 with the job and its count (200 with the preview on a dry run)."""
    if (denied := forbidden_unless_replayer(request)) is not None:
        return denied
    try:
        if request.content_type != "application/json":
            raise MalformedRequest("send JSON (Content-Type: application/json)")
        asked = read_request(name, ingest.load_storable_json(request.body))
        plan, job = plan_or_start(asked, request.user)
    except PublishError as error:
        return error_response(error)
    except redis.RedisError as exc:
        logger.warning("replay of %s: %s", name, exc)
        return error_response(BrokerUnavailable("the event store is unreachable; nothing was started"))
    body = {"replay": None, "dry_run": True, **plan.as_dict()}
    if job is None:
        return json_response(body)
    body.update(replay=job.pk, dry_run=False, state=job.state, rate=job.rate, reason=job.reason)
    return json_response(
        body, status=202, headers={"Location": f"{request.path.rsplit('/consumers/', 1)[0]}/replays/{job.pk}"}
    )


@login_required
@require_GET
def replay_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET replays/<id>``: the job's state and counts."""
    if (denied := forbidden_unless_replayer(request)) is not None:
        return denied
    try:
        return json_response(replays.progress(replays.lookup(pk)).as_dict())
    except PublishError as error:
        return error_response(error)


@login_required
@require_POST
def cancel_replay(request: HttpRequest, pk: int) -> HttpResponse:
    """``POST replays/<id>/cancel``: stop it now; 409 if it already ended."""
    if (denied := forbidden_unless_replayer(request)) is not None:
        return denied
    try:
        job = replays.cancel(replays.lookup(pk), request.user)
    except PublishError as error:
        return error_response(error)
    return json_response(replays.progress(job).as_dict())


@login_required
@require_POST
def edit_and_replay(request: HttpRequest, pk: int) -> HttpResponse:
    """``POST failed-events/<id>/edits``: replay a corrected copy to the event's consumer only (202).

    A dry run answers 200 with the diff and sends nothing.
    """
    if (denied := forbidden_unless_editor(request)) is not None:
        return denied
    try:
        row = FailedEvent.objects.select_related("consumer", "topic").filter(pk=pk).first()
        if row is None:
            raise NotFound(f"no failed event {pk}")
        if request.content_type != "application/json":
            raise MalformedRequest("send JSON (Content-Type: application/json)")
        body = contract.checked_body(request.META.get("CONTENT_LENGTH"), request.read)
        checked, edit = plan_or_send_edit(row, read_edit(ingest.load_storable_json(body)), request.user)
    except PublishError as error:
        return error_response(error)
    except redis.RedisError as exc:
        logger.warning("edit and replay of failed event %s: %s", pk, exc)
        return error_response(BrokerUnavailable("the event store is unreachable; nothing was replayed"))
    if edit is None:
        return json_response({"edit": None, "replay": None, "dry_run": True, **checked.as_dict()})
    job = edit.replay
    body = {"edit": edit.pk, "replay": job.pk, "dry_run": False, "state": job.state, "reason": job.reason}
    return json_response(
        {**body, **checked.as_dict()},
        status=202,
        headers={"Location": f"{request.path.rsplit('/failed-events/', 1)[0]}/replays/{job.pk}"},
    )
