"""Who may see the dashboard (its Content-Security-Policy is ``settings.SECURE_CSP``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import redis
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from eventflow.permissions import can_discard, can_edit_and_replay, can_operate, can_replay

from .. import dependencies
from ..params import BadParam

RETRY_SECONDS = 10  # the unavailable page reloads itself this often

# the rules live in eventflow.permissions
__all__ = ["can_discard", "can_edit_and_replay", "can_operate", "can_replay", "staff_page"]

View = Callable[..., HttpResponse]


def staff_page(view: View) -> View:
    """A dashboard page: staff only (others go to the login page).

    A parameter the page cannot use (``params.BadParam``) is answered with a 400
    whose plain-text body says which and why; so is a NUL in the path or the query,
    which names nothing here and which PostgreSQL refuses in any query.
    """
    return dependency_down_answered(staff_member_required(_bad_params_refused(view), login_url="login"))


def dependency_down_answered(view: View) -> View:
    """A page that needs the database or Redis while it is down: a 503 whose banner names it.

    Outside the login check, which reads the session from the database. An
    htmx request (the banner's own poll) gets the banner alone: eventflow.js
    swaps it in although it is a 503.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (DatabaseError, redis.RedisError) as exc:
            found = dependencies.problems() or [dependencies.failed_just_now(exc)]
            template = "dashboard/_sampler.html" if request.htmx else "dashboard/unavailable.html"
            context = {"problems": found, "sampler": None, "retry_seconds": RETRY_SECONDS}
            response = render(request, template, context, status=503)
            response["Retry-After"] = str(RETRY_SECONDS)
            return response

    return wrapped


def _bad_params_refused(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            _refuse_nul(request, kwargs)
            return view(request, *args, **kwargs)
        except BadParam as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")

    return wrapped


def _refuse_nul(request: HttpRequest, path_values: dict) -> None:
    for name, value in [*path_values.items(), *request.GET.items()]:
        if isinstance(value, str) and "\x00" in value:
            raise BadParam(name, "must not contain NUL characters")

