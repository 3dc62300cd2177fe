"""Who may see the dashboard, and what its pages may load."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from eventflow.permissions import can_discard, can_operate, can_replay

from ..params import BadParam

__all__ = ["can_discard", "can_operate", "can_replay", "staff_page"]  # the rules live in eventflow.permissions

# Everything is served by the project (vendored htmx, our CSS and JS); no inline
# script or style, so injected markup cannot run. 'self' covers ws:// of this host.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

View = Callable[..., HttpResponse]


def with_csp(view: View) -> View:
    """Add the Content-Security-Policy to the view's HTML responses."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapped


def staff_page(view: View) -> View:
    """A dashboard page: staff only (others go to the login page), with the CSP.

    A parameter the page cannot use (``params.BadParam``) is answered with a 400
    whose plain-text body says which and why; so is a NUL in the path or the query,
    which names nothing here and which PostgreSQL refuses in any query.
    """
    return with_csp(staff_member_required(_bad_params_refused(view), login_url="login"))


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

