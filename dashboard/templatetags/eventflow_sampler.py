"""``{% sampler_banner %}``: every dashboard page says which dependency is down, and when no monitor samples."""

from __future__ import annotations

import datetime as dt

from django import template

from dashboard import dependencies, sampler

register = template.Library()


@register.inclusion_tag("dashboard/_sampler.html")
def sampler_banner() -> dict:
    return banner_context()


def banner_context() -> dict:
    """The banner's context: nothing to say while every dependency answers and a sampler holds the leader key.

    With Redis down, whether a sampler runs is unknown (its key is in Redis): the Redis banner says why.
    """
    found = dependencies.problems()
    if dependencies.redis_down(found):
        return {"problems": found, "sampler": None}
    status = sampler.status()
    last = None if status.last_sample is None else dt.datetime.fromtimestamp(status.last_sample, dt.UTC)
    return {"problems": found, "sampler": status, "last_sample": last, "silent_for": status.silent_for}
