"""Edit & replay on the dashboard: correct a failed event's data, see the diff, confirm.

The form is the API's request (``eventflow.replay_api.read_edit``) as two
fields, the data (JSON text) and the reason: Preview checks it and shows the
diff (a dry run), Replay sends the corrected copy; both answer with the
``edit-form`` partial, saying any refusal in it as the API words it.
"""

from __future__ import annotations

from typing import Any

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import conf, ingest
from eventflow.errors import PublishError
from eventflow.models import FailedEvent, FailedEventEdit
from eventflow.replay_api import MAX_REASON, plan_or_send_edit, read_edit

from .. import params
from ..templatetags.eventflow_ui import as_json
from .security import can_edit_and_replay, staff_page

TEMPLATE = "dashboard/edit.html"
REFUSED = "You may not edit and replay failed events."


def _row(pk: int) -> FailedEvent:
    return get_object_or_404(FailedEvent.objects.select_related("consumer", "topic"), pk=pk)


def _context(row: FailedEvent, values: dict[str, str], **extra: Any) -> dict[str, Any]:
    edits = FailedEventEdit.objects.filter(failed_event=row).select_related("replay", "replay__requested_by")
    return {"row": row, "values": values, "earlier_edits": list(edits[:20]), **extra}


def _values(request: HttpRequest) -> dict[str, str]:
    """The form's fields as typed (shown again in the form); ``params.BadParam`` for a NUL."""
    return {
        "data": params.text(request.POST.get("data", ""), "data", max_chars=conf.get("MAX_BODY_BYTES") + 1),
        "reason": params.text(request.POST.get("reason", ""), "reason", max_chars=MAX_REASON + 1),
    }


@staff_page
def edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_edit_and_replay(request.user):
        return HttpResponseForbidden(REFUSED)
    row = _row(pk)
    values = {"data": as_json(row.event.get("data")), "reason": ""}
    return render(request, TEMPLATE, _context(row, values))


@staff_page
@require_POST
def edit_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Preview: check the corrected data and show what changed; nothing is sent."""
    return _submit(request, pk, dry_run=True)


@staff_page
@require_POST
def edit_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay the corrected copy to the row's consumer only."""
    return _submit(request, pk, dry_run=False)


def _submit(request: HttpRequest, pk: int, *, dry_run: bool) -> HttpResponse:
    if not can_edit_and_replay(request.user):
        return HttpResponseForbidden(REFUSED)
    row = _row(pk)
    values = _values(request)
    extra: dict[str, Any] = {}
    try:
        data = ingest.load_json(values["data"].encode())
        checked, edit = plan_or_send_edit(row, read_edit({**values, "data": data, "dry_run": dry_run}), request.user)
        extra = {"preview": checked, "sent": edit}
    except PublishError as exc:
        extra = {"edit_error": exc.message}
    except redis.RedisError:
        extra = {"edit_error": "The event store is unreachable; nothing was replayed."}
    row.refresh_from_db()
    return render(request, f"{TEMPLATE}#edit-form", _context(row, values, **extra))
