"""The engine's HTTP API; include it under any prefix (the project uses ``api/v1/``)."""

from __future__ import annotations

from django.urls import path

from . import api

app_name = "eventflow"

urlpatterns = [
    path("topics/<str:topic>/events", api.publish_events, name="publish"),
    path("failed-events/<int:pk>/replay", api.replay_one, name="replay"),
    path("failed-events/replay", api.replay_bulk, name="replay-bulk"),
    path("health", api.health, name="health"),
]
