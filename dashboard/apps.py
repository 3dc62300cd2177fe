from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "EventFlow dashboard"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deployment checks
