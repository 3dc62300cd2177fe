"""Where the project mounts the engine's API: read by urls.py, asgi.py and settings.py (which cannot import urls)."""

from __future__ import annotations

API_PREFIX = "api/v1/"  # where eventflow.urls is included; the thin publish path (asgi.py) takes it too
