"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

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

from . import routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        # POST /api/v1/topics/<topic>/events takes a thin path (same contract); the rest is Django's.
        "http": PublishRouter(django_asgi_app),
        # Origin must be one of ALLOWED_HOSTS; the session must be a staff user's.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))),
    }
)
