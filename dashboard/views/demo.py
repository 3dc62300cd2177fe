"""The demo's switch, on fraud-check's consumer page: fix (or break) the risk-scoring service."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.http import require_POST

from ..demo import switches
from .security import can_replay, staff_page


def switch_context(handler: str) -> dict:
    """What the consumer page shows of the demo switch: nothing unless it runs the demo's fraud check."""
    if handler != switches.FRAUD_CHECK_HANDLER:
        return {"demo_switch": None}
    return {"demo_switch": {"fixed": switches.risk_service_fixed()}}


@staff_page
@require_POST
def risk_service(request: HttpRequest) -> HttpResponse:
    """Set the switch from the button ("fixed=1" or "fixed=0"); answer with the switch as it is now."""
    if not can_replay(request.user):
        return HttpResponseForbidden("Only operators who may replay may fix the demo's risk service.")
    switches.set_risk_service_fixed(request.POST.get("fixed") == "1")
    return render(request, "dashboard/consumer.html#demo-switch", switch_context(switches.FRAUD_CHECK_HANDLER))
