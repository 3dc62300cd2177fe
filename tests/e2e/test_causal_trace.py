"""A three-hop flow draws its whole causal tree on the event page, live, in Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.models import Topic
from tests.helpers import make_consumer, wait_for

from .conftest import log_in, screenshot
from .test_dashboard import publish_over_http
from .test_live_updates import group_exists

pytestmark = pytest.mark.processes


def test_a_three_hop_flow_shows_its_causal_tree_live(
    page, server, monitor_process, spawn_worker, orders, payments, shop_token
):
    shipments = Topic.objects.create(name="shipments")
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay", orders)
    make_consumer("shipper", "tests.eventflow.tracing_handlers.ship", payments)
    make_consumer("notify", "tests.handlers.billing", shipments)
    spawn_worker("relay", "shipper", "notify")
    wait_for(lambda: group_exists("shipments", "notify"), message="the worker's groups")
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    publish_over_http(server, shop_token, {"type": "order.created", "data": {"n": 1}, "traceparent": traceparent})
    stream_id = get_redis().xrange(keys.stream("orders"))[-1][0].decode()

    log_in(page, f"/topics/orders/events/{stream_id}/")

    tree = page.locator("#causal-tree")
    expect(tree).to_contain_text("trace 4bf92f3577b34da6a3ce929d0e0e4736")
    hops = tree.locator("li.causal-hop")
    expect(hops).to_have_count(3, timeout=20_000)  # relay, then shipper, then notify: pushed as they happen
    expect(hops.nth(0)).to_contain_text("relay")
    expect(tree.locator("li.causal-event")).to_have_count(3)
    expect(tree.locator("li.causal-event").nth(2)).to_contain_text("shipment.requested on shipments")
    for n in range(3):
        expect(hops.nth(n).locator(".badge").first).to_have_text("acked", timeout=20_000)
    screenshot(page, "causal-trace")
    tree.get_by_role("link", name="shipment.requested").click()
    expect(page.locator("#causal-tree")).to_contain_text("caused by event")
