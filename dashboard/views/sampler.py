"""The "no monitor is sampling" banner, re-fetched by every page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.templatetags.eventflow_sampler import banner_context

from .security import staff_page


@staff_page
def sampler_banner(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/_sampler.html", banner_context())
