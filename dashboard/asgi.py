"""ASGI entry point: HTTP through Django; WebSockets join in the dashboard issue."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# Set Django up before anything imports models.
django_asgi_app = get_asgi_application()

application = django_asgi_app
