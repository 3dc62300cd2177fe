"""Issue 4, item 11: hostile markup in events, types, keys, descriptions and errors stays text.

Every payload, if it ran, would call ``alert()`` or make htmx fetch a probe
URL. The payloads go into event data, types, keys and subjects, topic and
consumer descriptions, failed-event errors and tracebacks; then every
dashboard view (and the admin's failed-event pages) is opened in headless
Chromium with the monitor pushing live updates. Counted: dialogs and probe
requests (both must be 0), and the Content-Security-Policy of every HTML page.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission

from eventflow import publish
from eventflow.models import Consumer, FailedEvent, Topic
from tests.helpers import make_consumer

from .conftest import log_in

pytestmark = pytest.mark.processes

PROBE = "/xss-probe"
_SHAPES = [
    "<script>alert({n})</script>",
    "<img src=x onerror=alert({n})>",
    "<svg onload=alert({n})>",
    "<svg><script>alert({n})</script></svg>",
    '"><script>alert({n})</script>',
    "'><img src=x onerror=alert({n})>",
    "</script><script>alert({n})</script>",
    "</textarea><script>alert({n})</script>",
    "</title><script>alert({n})</script>",
    '<a href="javascript:alert({n})">x</a>',
    '<iframe src="javascript:alert({n})"></iframe>',
    "<body onload=alert({n})>",
    "<details open ontoggle=alert({n})>",
    "<input autofocus onfocus=alert({n})>",
    '<div hx-get="' + PROBE + '?{n}" hx-trigger="load">x</div>',
    '<div hx-post="' + PROBE + '?{n}" hx-trigger="load" hx-swap="outerHTML">x</div>',
    '<div hx-on:htmx:load="alert({n})">x</div>',
    '<div hx-on::load="alert({n})" hx-get="' + PROBE + '?{n}" hx-trigger="load"></div>',
    '<form hx-ws="connect:' + PROBE + '?{n}"></form>',
    "javascript:alert({n})",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert({n})>",
    "{{{{7*7}}}}<script>alert({n})</script>",
    '<style>@import "' + PROBE + '?{n}";</style>',
    '<link rel=stylesheet href="' + PROBE + '?{n}">',
    '<object data="javascript:alert({n})"></object>',
    '<embed src="javascript:alert({n})">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert({n})">',
]
PAYLOADS = [shape.format(n=n) for n, shape in enumerate(_SHAPES * 2)]  # 54 payloads, two of each shape


@pytest.fixture
def hostile_flow(orders, shop):
    """Put every payload where the dashboard shows text from users and producers."""
    Topic.objects.filter(pk=orders.pk).update(description=PAYLOADS[0])
    billing = make_consumer("billing", "tests.handlers.billing", orders)
    Consumer.objects.filter(pk=billing.pk).update(description=PAYLOADS[1], event_types="")
    for n, payload in enumerate(PAYLOADS):
        publish("orders", {"note": payload, "nested": {payload: [payload]}}, type=payload[:200], key=payload[:200])
        envelope = {"id": f"x-{n}", "type": payload[:200], "source": payload, "topic": "orders", "data": payload}
        FailedEvent.objects.create(
            consumer=billing, topic=orders, event_id=f"x-{n}", event_type=payload[:200], event=envelope,
            error=f"ValueError: {payload}", traceback=payload,
        )  # fmt: skip
    return billing


def test_no_payload_runs_in_any_view_and_every_page_has_a_csp(
    page, monitor_process, hostile_flow, browser_errors, staff_user
):
    browser_errors.tolerate(r"/admin/eventflow/topic/")  # the operator may not view topics there: 403, as it should
    dialogs, probes, pages_without_csp = [], [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: probes.append(request.url) if PROBE in request.url else None)
    page.on(
        "response",
        lambda r: (
            pages_without_csp.append(r.url)
            if r.request.resource_type == "document" and "content-security-policy" not in r.headers
            else None
        ),
    )
    staff_user.user_permissions.add(Permission.objects.get(codename="edit_failedevent_data"))  # the Edit page too
    log_in(page)
    first_failed = FailedEvent.objects.order_by("pk").first()
    stream_id = _first_stream_id()
    views = [
        "/",
        "/topics/orders/",
        f"/topics/orders/events/{stream_id}/",
        "/consumers/billing/",
        "/failed/",
        "/failed/?q=script",
        f"/failed/{first_failed.pk}/edit",
        "/admin/eventflow/failedevent/",
        f"/admin/eventflow/failedevent/{first_failed.pk}/change/",
        "/admin/eventflow/topic/",
    ]
    for path in views:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        time.sleep(1.0)  # live pushes from the monitor land in the page meanwhile

    print(f"\n== XSS: {len(PAYLOADS)} payloads, {len(views)} views: {len(dialogs)} dialogs, {len(probes)} probes ==")
    assert dialogs == [] and probes == []
    print(f"HTML pages without a CSP: {pages_without_csp}")
    assert [url for url in pages_without_csp if "/admin/" not in url] == []


def _first_stream_id() -> str:
    from eventflow import keys
    from eventflow.connection import get_redis

    [(stream_id, _)] = get_redis().xrange(keys.stream("orders"), count=1)
    return stream_id.decode()
