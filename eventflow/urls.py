"""The engine's HTTP API; include it under any prefix (the project uses ``api/v1/``)."""

from __future__ import annotations

from django.urls import path, re_path

from . import api, openapi, replay_api

app_name = "eventflow"

urlpatterns = [
    path("topics/<str:topic>/events", api.publish_events, name="publish"),
    path("failed-events/<int:pk>/replay", api.replay_one, name="replay"),
    path("failed-events/replay", api.replay_bulk, name="replay-bulk"),
    path("failed-events/<int:pk>/edits", replay_api.edit_and_replay, name="failed-event-edit"),
    path("consumers/<str:name>/replays", replay_api.create_replay, name="replay-create"),
    path("replays/<int:pk>", replay_api.replay_detail, name="replay-detail"),
    path("replays/<int:pk>/cancel", replay_api.cancel_replay, name="replay-cancel"),
    path("health", api.health, name="health"),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    # Last: anything else under the API prefix (an empty or slashed topic name, a typo) gets a JSON 404.
    # (?s:…): a decoded %0A in the path must not slip past the catch-all to Django's HTML 404.
    re_path(r"^(?P<path>(?s:.*))\Z", api.not_found, name="not-found"),
]
