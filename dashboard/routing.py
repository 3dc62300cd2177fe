"""WebSocket routes: one socket per open dashboard page."""

from __future__ import annotations

from django.urls import re_path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    re_path(r"^ws/live/(?P<page>overview|failed|topics|consumers)/$", LiveConsumer.as_asgi()),
    re_path(r"^ws/live/(?P<page>topic|consumer)/(?P<name>[a-z0-9][a-z0-9._-]{0,99})/$", LiveConsumer.as_asgi()),
    re_path(
        r"^ws/live/(?P<page>event)/(?P<name>[a-z0-9][a-z0-9._-]{0,99})/(?P<stream_id>\d{1,20}-\d{1,20})/$",
        LiveConsumer.as_asgi(),
    ),
]
