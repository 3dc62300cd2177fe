"""Dashboard pages (staff only)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from eventflow.models import Consumer, FailedEvent, Producer, Topic


@staff_member_required(login_url="login")
def overview(request: HttpRequest) -> HttpResponse:
    context = {
        "topics": Topic.objects.prefetch_related("producers", "consumers"),
        "producers": Producer.objects.prefetch_related("topics"),
        "consumers": Consumer.objects.prefetch_related("topics"),
        "failed_count": FailedEvent.objects.filter(
            status__in=[FailedEvent.Status.FAILED, FailedEvent.Status.FAILED_AGAIN]
        ).count(),
    }
    return render(request, "dashboard/overview.html", context)
