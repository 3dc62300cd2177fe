"""Screenshots of every page with a busy flow, for people to look at (saved under /tmp)."""

from __future__ import annotations

import threading

import httpx
import pytest
from playwright.sync_api import expect

from eventflow.models import Producer, Topic
from tests.helpers import make_consumer

from .conftest import SCREENSHOTS, log_in, screenshot

pytestmark = pytest.mark.processes


def busy_flow(orders, shop_token) -> str:
    payments = Topic.objects.create(name="payments", description="Card payments")
    Producer.objects.get(name="shop").topics.add(payments)
    make_consumer("billing", "tests.handlers.billing", orders)
    make_consumer("shipping", "tests.handlers.slow", orders)
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, payments, max_attempts=1)
    make_consumer("ledger", "tests.handlers.hangs", payments, stall_threshold=3, ack_timeout=600)
    return shop_token


def publish_for_a_while(url: str, token: str, stop: threading.Event) -> None:
    n = 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.wait(0.05):
            n += 1
            topic = "orders" if n % 3 else "payments"
            event = {"type": "order.created" if topic == "orders" else "payment.captured", "key": f"c-{n % 17}"}
            event["data"] = {"n": n, "amount": n * 7 % 300, "note": "<b>inert</b>" if n % 5 == 0 else "ok"}
            client.post(f"{url}/api/v1/topics/{topic}/events", json=event)


def test_screenshots_of_every_page(page, server, monitor_process, spawn_worker, orders, shop_token):
    busy_flow(orders, shop_token)
    spawn_worker()
    stop = threading.Event()
    publisher = threading.Thread(target=publish_for_a_while, args=(server.url, shop_token, stop), daemon=True)
    page.goto("/login/")
    screenshot(page, "0-login")
    publisher.start()
    try:
        log_in(page)
        expect(page.locator("#consumer-ledger .badge")).to_have_text("STALLED", timeout=30_000)
        screenshot(page, "1-overview")
        page.goto("/topics/orders/")
        expect(page.locator("#tail-rows tr").nth(20)).to_be_attached(timeout=15_000)
        screenshot(page, "2-topic")
        page.locator("#tail-rows tr a").first.click()
        expect(page.locator("#delivery-matrix")).to_be_visible()
        screenshot(page, "3-event")
        page.goto("/consumers/flaky/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        page.wait_for_timeout(1500)  # let the charts gather a few readings for the picture
        screenshot(page, "4-consumer-flaky")
        page.goto("/consumers/ledger/")
        expect(page.locator("#consumer-health .badge")).to_have_text("STALLED")
        screenshot(page, "5-consumer-ledger")
        page.goto("/failed/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # htmx has wired the page
        page.get_by_role("button", name="Replay all matching…").click()
        expect(page.locator("#bulk-confirm")).to_contain_text("Replay")
        screenshot(page, "6-failed")
        page.screenshot(path=str(SCREENSHOTS / "6-failed-top.png"))
    finally:
        stop.set()
        publisher.join(5)
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 7
