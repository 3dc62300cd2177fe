"""Who may see the dashboard, and what its pages may load."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse

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
    """A dashboard page: staff only (others go to the login page), with the CSP."""
    return with_csp(staff_member_required(view, login_url="login"))


def can_replay(user) -> bool:
    return user.is_staff and user.has_perm("eventflow.replay_failedevent")


def can_discard(user) -> bool:
    return user.is_staff and user.has_perm("eventflow.change_failedevent")


def can_operate(user) -> bool:
    """Reclaim, dead-letter now, skip a backlog, pause: changing how a consumer runs."""
    return user.is_staff and user.has_perm("eventflow.change_consumer")
