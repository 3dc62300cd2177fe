"""Issue 9 in the browser: an import error, infrastructure errors and parked dead letters, live.

Real worker and monitor processes; the pages are opened before the worker
meets the faults, so what they show arrives by the live pushes. Looked at at
1280 and 360 px wide (screenshots under ``var/screenshots``); no console error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from eventflow import publish
from tests.helpers import make_consumer

from .conftest import log_in, screenshot

pytestmark = pytest.mark.processes


def test_an_import_error_and_infrastructure_errors_arrive_live(page, server, monitor_process, spawn_worker, orders):
    make_consumer("typo", "tests.eventflow.broken_handler.handle", orders)
    make_consumer("ledger", "tests.handlers.database_down_twice", orders, max_attempts=1, retry_initial=0.01)
    log_in(page, "/consumers/typo/")
    expect(page.locator("#consumer-health .error-box")).to_have_count(0)

    spawn_worker()
    publish("orders", {"n": 1}, type="order.created")

    box = page.locator("#consumer-health .error-box")
    expect(box).to_contain_text("RuntimeError: settings for this handler are missing", timeout=20_000)
    screenshot(page, "integrity-consumer-1280")
    page.set_viewport_size({"width": 360, "height": 800})
    expect(box).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360 + 1, "the page scrolls sideways"
    screenshot(page, "integrity-consumer-360")

    page.goto("/consumers/ledger/")
    stat = page.locator("#consumer-health .stat", has_text="infrastructure errors")
    expect(stat.locator(".stat-value")).to_have_text("2", timeout=20_000)
    screenshot(page, "integrity-infra-360")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/consumers/")
    expect(page.locator("#consumer-typo")).to_contain_text("handler does not import")
    expect(page.locator("#consumer-ledger")).to_contain_text("infra errors 2")
    screenshot(page, "integrity-consumers-1280")
    page.goto("/")
    expect(page.locator("#consumer-table #consumer-typo")).to_contain_text("handler does not import")
    screenshot(page, "integrity-overview-1280")
    page.set_viewport_size({"width": 360, "height": 800})
    screenshot(page, "integrity-overview-360")


def test_an_open_page_names_redis_when_it_stops_and_clears_when_it_is_back(
    browser, browser_errors, static_root, transactional_db, key_prefix, staff_user, orders
):
    from tests.helpers import process_env
    from tests.reliability.harness import RedisServer

    from .conftest import Server

    redis_server = RedisServer(appendonly=False).start()
    web = Server(process_env(redis_server.url, key_prefix), static_root)
    context = browser.new_context(viewport={"width": 360, "height": 800}, base_url=web.url)
    tab = context.new_page()
    browser_errors.watch(tab)
    # Redis is stopped on purpose: the socket's failed reconnects are expected.
    browser_errors.tolerate(r"WebSocket connection to .* failed")
    browser_errors.tolerate(r"^console: \[object Event\] at .*/htmx-2\.min(\.[0-9a-f]+)?\.js$")
    try:
        log_in(tab, "/failed/")
        banner = tab.locator('#sampler [data-problem="redis_down"]')
        expect(banner).to_have_count(0)

        redis_server.stop()
        expect(banner).to_be_visible(timeout=25_000)  # the banner's poll, every 10 s
        screenshot(tab, "integrity-redis-down-360")
        redis_server.start()
        expect(banner).to_have_count(0, timeout=25_000)
    finally:
        context.close()
        web.stop()
        redis_server.stop()
    assert browser_errors.unexpected() == [], "the browser reported errors"
