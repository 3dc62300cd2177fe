"""Live updates in a real browser: new failed rows, the event page's delivery matrix, a resumed tail."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from eventflow import keys
from eventflow.connection import get_redis
from tests.helpers import make_consumer, wait_for

from .conftest import log_in
from .test_dashboard import publish_over_http

pytestmark = pytest.mark.processes


def group_exists(topic: str, consumer: str) -> bool:
    try:
        return any(g["name"] in (consumer, consumer.encode()) for g in get_redis().xinfo_groups(keys.stream(topic)))
    except Exception:  # noqa: BLE001 - no stream yet
        return False


def test_a_new_failure_appears_on_an_open_failed_events_page(
    page, server, monitor_process, spawn_worker, orders, shop_token
):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    make_consumer("other", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    spawn_worker("flaky", "other")
    wait_for(lambda: group_exists("orders", "flaky") and group_exists("orders", "other"), message="the worker's groups")
    log_in(page, "/failed/?consumer=flaky")
    expect(page.locator("#failed-rows")).to_contain_text("No failed events match.")
    publish_over_http(server, shop_token, {"type": "order.created", "data": {"n": 7}})
    rows = page.locator("#failed-rows tr.failed-row")
    expect(rows).to_have_count(1, timeout=20_000)  # flaky's row only: other's is filtered out
    expect(rows.first).to_contain_text("cannot handle odd n=7")
    expect(rows.first).to_contain_text("flaky")
    expect(page.locator("#failed-rows .empty-row")).to_be_hidden()
    expect(rows.first.get_by_role("button", name="Replay")).to_be_visible()


def test_the_event_pages_delivery_matrix_updates_live(page, server, monitor_process, spawn_worker, orders, shop_token):
    make_consumer("slow", "tests.handlers.slow", orders)
    spawn_worker("slow")
    wait_for(lambda: group_exists("orders", "slow"), message="the worker's group")
    publish_over_http(server, shop_token, {"type": "order.created", "data": {"sleep": 6}})
    stream_id = get_redis().xrange(keys.stream("orders"))[-1][0].decode()
    log_in(page, f"/topics/orders/events/{stream_id}/")
    state = page.locator("#delivery-matrix tr", has_text="slow")
    expect(state).to_contain_text("pending", timeout=5_000)
    expect(state).to_contain_text("acked", timeout=20_000)  # no reload, no button


def test_resuming_the_live_tail_fills_in_what_was_published_while_paused(
    page, server, monitor_process, orders, shop_token, billing
):
    log_in(page, "/topics/orders/")
    page.get_by_label("Pause").check()
    expect(page.locator("#tail-status")).to_contain_text("Paused")
    markers = [f"paused-{n}-{time.time_ns()}" for n in range(3)]
    for marker in markers:
        publish_over_http(server, shop_token, {"type": "order.created", "data": {"marker": marker}})
    expect(page.locator("#tail-status")).to_contain_text("3 new events held back", timeout=10_000)
    expect(page.locator("#tail-rows")).not_to_contain_text(markers[0])
    page.get_by_label("Pause").uncheck()
    for marker in markers:
        expect(page.locator("#tail-rows tr", has_text=marker)).to_have_count(1)
    texts = page.locator("#tail-rows tr").all_inner_texts()[:3]
    assert [next(m for m in markers if m in text) for text in texts] == markers[::-1]  # newest first
