"""The dashboard in a real browser, against a real server, workers and monitor."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from eventflow.models import FailedEvent
from tests import handlers
from tests.helpers import make_consumer

from .conftest import log_in

pytestmark = pytest.mark.processes


def publish_over_http(server, token: str, event: dict) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/topics/orders/events", json=event, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202, response.text
    return response.json()["ids"][0]


def test_an_operator_logs_in_and_sees_the_topology(page, monitor_process, orders, shop, billing, shipping):
    log_in(page)
    topology = page.locator("#topology svg")
    for name in ("shop", "orders", "billing", "shipping"):
        expect(topology.locator("text.node-label", has_text=re.compile(f"^{name}$"))).to_be_visible()
    expect(page.locator("#consumer-billing")).to_contain_text("OK")
    topology.locator("text.node-label", has_text=re.compile("^billing$")).click()
    expect(page.get_by_role("heading", name="billing")).to_be_visible()


def test_an_event_published_over_http_appears_in_the_live_tail(
    page, server, monitor_process, orders, shop_token, billing
):
    log_in(page, "/topics/orders/")
    marker = f"tail-{time.time_ns()}"
    started = time.monotonic()
    publish_over_http(server, shop_token, {"type": "order.created", "key": "k1", "data": {"marker": marker}})
    row = page.locator("#tail-rows tr", has_text=marker)
    expect(row).to_be_visible(timeout=5_000)
    print(f"\nlive tail latency (publish → row visible): {time.monotonic() - started:.2f}s")
    expect(row).to_contain_text("order.created")


def test_a_failing_consumers_events_show_as_failed_and_replay_resolves_them(
    page, server, monitor_process, spawn_worker, orders, shop_token
):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    spawn_worker("flaky")
    log_in(page)
    for n in (1, 2, 3):
        publish_over_http(server, shop_token, {"type": "order.created", "data": {"n": n}})
    failed_link = page.locator("#consumer-flaky .failed-link")
    expect(failed_link).to_have_text("2", timeout=20_000)
    failed_link.click()
    rows = page.locator("#failed-rows tr.failed-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("cannot handle odd n=")
    expect(rows.first).to_contain_text("Failed")

    handlers.fix_flaky()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = rows.first
    row_id = row.get_attribute("id")
    row.get_by_role("button", name="Replay").click()
    expect(page.locator(f"#{row_id}")).to_contain_text("Replaying")
    expect(page.locator(f"#{row_id}")).to_contain_text("Resolved", timeout=20_000)
    assert FailedEvent.objects.get(pk=int(row_id.rsplit("-", 1)[1])).status == FailedEvent.Status.RESOLVED


def test_a_hanging_consumer_turns_stalled_within_its_threshold_plus_two_seconds(
    page, server, monitor_process, spawn_worker, orders, shop_token
):
    threshold = 3.0
    make_consumer("hung", "tests.handlers.hangs", orders, stall_threshold=threshold, ack_timeout=600)
    spawn_worker("hung")
    log_in(page)
    status = page.locator("#consumer-hung .badge")
    expect(status).to_have_text("OK", timeout=20_000)  # its worker is up
    publish_over_http(server, shop_token, {"type": "order.created", "data": {"n": 1}})
    started = time.monotonic()
    expect(status).to_have_text("STALLED", timeout=(threshold + 10) * 1000)
    elapsed = time.monotonic() - started
    print(f"\nhanging consumer shown STALLED after {elapsed:.1f}s (threshold {threshold:g}s)")
    assert elapsed <= threshold + 2.0
    expect(page.locator("#consumer-hung .reason")).to_contain_text("no ack for")


def test_the_page_recovers_after_the_server_restarts(
    page, server, monitor_process, orders, shop_token, billing, browser_errors
):
    # The server is down on purpose: the socket's failed connects are reported (htmx logs the error event).
    browser_errors.tolerate(r"WebSocket connection to .* failed")
    browser_errors.tolerate(r"^console: \[object Event\] at .*/htmx-2\.min(\.[0-9a-f]+)?\.js$")  # hashed in production
    log_in(page, "/topics/orders/")
    server.stop()
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))  # figures dimmed
    expect(page.locator("#conn")).to_contain_text(re.compile(r"last update \d+ s ago"))
    server.start()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=40_000)
    marker = f"after-restart-{time.time_ns()}"
    publish_over_http(server, shop_token, {"type": "order.created", "data": {"marker": marker}})
    expect(page.locator("#tail-rows tr", has_text=marker)).to_be_visible(timeout=10_000)
