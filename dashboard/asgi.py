"""ASGI entry point: HTTP through Django, WebSockets through Channels, static files first.

This is the production application (``uvicorn dashboard.asgi:application``,
see ``dashboard.webserver``): ``/static/…`` is answered by ServeStatic from the
collected, hashed files (``dashboard.static_files``), and the lifespan starts
this process's share of the monitor (``dashboard.sampler``).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# Set Django up before anything imports models (routing imports the consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from eventflow.asgi_publish import PublishRouter  # noqa: E402

from . import routing, sampler, static_files  # noqa: E402
from .paths import API_PREFIX  # noqa: E402


async def lifespan(scope: dict, receive, send) -> None:
    """Start this web process's sampler at startup (unless EVENTFLOW_MONITOR is off); stop it at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            sampler.start_in_web_process()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            sampler.stop_in_web_process()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        # Static files first; POST /api/v1/topics/<topic>/events takes a thin path (same contract);
        # the rest is Django's.
        "http": static_files.wrap(PublishRouter(django_asgi_app, prefix=API_PREFIX)),
        # Origin must be one of ALLOWED_HOSTS; the session must be a staff user's.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))),
        "lifespan": lifespan,
    }
)
