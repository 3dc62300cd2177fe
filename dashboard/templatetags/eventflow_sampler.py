"""``{% sampler_banner %}``: every dashboard page says when no monitor samples, and since when."""

from __future__ import annotations

import datetime as dt

from django import template

from dashboard import sampler

register = template.Library()


@register.inclusion_tag("dashboard/_sampler.html")
def sampler_banner() -> dict:
    return banner_context()


def banner_context() -> dict:
    """The banner's context: nothing to say while a sampler holds the leader key."""
    status = sampler.status()
    last = None if status.last_sample is None else dt.datetime.fromtimestamp(status.last_sample, dt.UTC)
    return {"sampler": status, "last_sample": last, "silent_for": status.silent_for}
