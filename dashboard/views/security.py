"""Who may see the dashboard (its Content-Security-Policy is ``settings.SECURE_CSP``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from eventflow.permissions import can_discard, can_operate, can_replay

from ..params import BadParam

__all__ = ["can_discard", "can_operate", "can_replay", "staff_page"]  # the rules live in eventflow.permissions

View = Callable[..., HttpResponse]


def staff_page(view: View) -> View:
    """A dashboard page: staff only (others go to the login page).

    A parameter the page cannot use (``params.BadParam``) is answered with a 400
    whose plain-text body says which and why; so is a NUL in the path or the query,
    which names nothing here and which PostgreSQL refuses in any query.
    """
    return staff_member_required(_bad_params_refused(view), login_url="login")


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

