"""WebSocket routes: one socket per open dashboard page, as each page describes its own."""

from __future__ import annotations

from django.urls import re_path

from .consumers import LiveConsumer
from .live_pages import PAGES

websocket_urlpatterns = [re_path(page.socket_route, LiveConsumer.as_asgi()) for page in PAGES.values()]
