from __future__ import annotations

from django.apps import AppConfig


class EventflowConfig(AppConfig):
    name = "eventflow"
    verbose_name = "EventFlow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401 - registers checks and receivers
