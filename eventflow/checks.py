"""System checks for settings that would otherwise fail at 3 a.m."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import conf, metrics


@register()
def check_settings(app_configs, **kwargs) -> list:
    problems = []
    url = conf.get("REDIS_URL")
    schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
    if not url.startswith(schemes):
        problems.append(Error(f"REDIS_URL {url!r} must start with one of {', '.join(schemes)}", id="eventflow.E001"))
    if conf.get("MAX_BATCH_EVENTS") < 1 or conf.get("MAX_BODY_BYTES") < 1024:
        problems.append(
            Error("EVENTFLOW_MAX_BATCH_EVENTS must be ≥ 1 and EVENTFLOW_MAX_BODY_BYTES ≥ 1024", id="eventflow.E002")
        )
    if conf.get("SYNC") and not settings.DEBUG:
        problems.append(
            Warning("EVENTFLOW_SYNC runs handlers inside publish; it is meant for tests", id="eventflow.W001")
        )
    try:
        metrics.allowed_networks()
    except ImproperlyConfigured as exc:
        problems.append(Error(str(exc), id="eventflow.E015"))
    return problems
