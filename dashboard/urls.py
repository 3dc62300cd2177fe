from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView

from eventflow.metrics import metrics_view

from . import views
from .paths import API_PREFIX
from .views.alerts import alert_history
from .views.security import dependency_down_answered

admin.site.site_header = "EventFlow administration"
admin.site.site_title = "EventFlow admin"
admin.site.index_title = "Flow configuration"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("topics/", views.topics_index, name="topics"),
    path("consumers/", views.consumers_index, name="consumers"),
    path("search/", views.search, name="search"),
    path("demo/risk-service", views.risk_service, name="demo-risk-service"),
    path("topics/<str:name>/", views.topic_page, name="topic"),
    path("topics/<str:name>/publish", views.publish_test_event, name="topic-publish"),
    path("topics/<str:name>/events/<str:stream_id>/", views.event_detail, name="event"),
    path("consumers/<str:name>/", views.consumer_page, name="consumer"),
    path("alerts/", alert_history, name="alerts"),
    path("consumers/<str:name>/replays/preview", views.replay_preview, name="replay-preview"),
    path("consumers/<str:name>/replays/start", views.replay_start, name="replay-start"),
    path("consumers/<str:name>/reclaim", views.stuck_reclaim, name="stuck-reclaim"),
    path("consumers/<str:name>/dead-letter", views.stuck_dead_letter, name="stuck-dead-letter"),
    path("consumers/<str:name>/skip-backlog", views.stuck_skip_confirm, name="stuck-skip-confirm"),
    path("consumers/<str:name>/skip-backlog/confirmed", views.stuck_skip, name="stuck-skip"),
    path("consumers/<str:name>/pause", views.stuck_pause, name="stuck-pause"),
    path("replays/<int:pk>/", views.replay_page, name="replay"),
    path("replays/<int:pk>/cancel", views.replay_cancel, name="replay-cancel"),
    path("failed/", views.failed_list, name="failed"),
    path("failed/<int:pk>/replay", views.replay_one, name="failed-replay"),
    path("failed/<int:pk>/discard", views.discard_one, name="failed-discard"),
    path("failed/<int:pk>/edit", views.edit_page, name="failed-edit"),
    path("failed/<int:pk>/edit/preview", views.edit_preview, name="failed-edit-preview"),
    path("failed/<int:pk>/edit/send", views.edit_send, name="failed-edit-send"),
    path("failed/replay-selected", views.replay_selected, name="failed-replay-selected"),
    path("failed/replay-all", views.replay_confirm, name="failed-replay-confirm"),
    path("failed/replay-all/confirmed", views.replay_matching, name="failed-replay-matching"),
    path("failed/replays/<int:pk>/cancel", views.bulk_replay_cancel, name="failed-replay-cancel"),
    path("failed/discard-selected", views.discard_selected, name="failed-discard-selected"),
    path("failed/discard-all", views.discard_confirm, name="failed-discard-confirm"),
    path("failed/discard-all/confirmed", views.discard_matching, name="failed-discard-matching"),
    path("sampler/", views.sampler_banner, name="sampler"),
    # Browsers ask for /favicon.ico on pages that name none (the admin's): the dashboard's icon.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True), name="favicon"),
    path("login/", dependency_down_answered(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path(API_PREFIX, include("eventflow.urls")),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; allow-list or bearer token (eventflow.metrics)
]
