"""The alert history: what was sent, to whom, and whether it arrived."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from eventflow.models import AlertRule, SentAlert

from .security import staff_page

HISTORY_ROWS = 100


@staff_page
def alert_history(request: HttpRequest) -> HttpResponse:
    """The newest alerts sent (configured in the admin), and the rules that send them."""
    context = {
        "sent": SentAlert.objects.select_related("rule", "channel")[:HISTORY_ROWS],
        "rules": AlertRule.objects.select_related("consumer").prefetch_related("channels"),
        "limit": HISTORY_ROWS,
    }
    return render(request, "dashboard/alerts.html", context)
