"""The dashboard at 1,000 topics and 1,000 consumers, in Chromium: find, focus, replay, look.

Every page the test opens fails it on any console error or CSP violation (the
``page`` fixture). Screenshots at 360, 1280 and 2560 px go to var/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from eventflow.models import Consumer, FailedEvent, Topic
from eventflow.publishing import publish
from tests import handlers
from tests.helpers import make_consumer, wait_for

from .conftest import log_in, screenshot

pytestmark = pytest.mark.processes

PREFIXES = ("cart", "orders", "billing", "search", "users", "fraud", "ship", "mail")
WIDTHS = (360, 1280, 2560)


def a_thousand_of_each() -> None:
    """1,000 topics and 1,000 consumers (one topic each), in eight name prefixes."""
    # bulk_create skips save(), which sets each row's Redis identity: give it here.
    names = [(f"{PREFIXES[i % 8]}.t{i:04d}", f"{PREFIXES[i % 8]}.c{i:04d}") for i in range(1000)]
    topics = Topic.objects.bulk_create([Topic(name=t, stream_name=t) for t, _ in names])
    consumers = Consumer.objects.bulk_create(
        [Consumer(name=c, group_name=c, handler="tests.handlers.billing") for _, c in names]
    )
    through = Consumer.topics.through
    through.objects.bulk_create([through(consumer_id=c.id, topic_id=t.id) for c, t in zip(consumers, topics)])


@pytest.fixture
def checkout(transactional_db, spawn_worker):
    """A named topic among the thousand, whose one consumer fails every odd event once and for all."""
    a_thousand_of_each()
    topic = Topic.objects.create(name="checkout.payments")
    make_consumer("checkout-fraud", "tests.handlers.fails_on_odd", topic, max_attempts=1)
    spawn_worker("checkout-fraud")
    for n in (1, 2, 3, 4, 5):
        publish("checkout.payments", {"n": n}, type="payment.captured")
    wait_for(lambda: FailedEvent.objects.filter(consumer__name="checkout-fraud").count() == 3, timeout=30)
    return topic


def test_an_operator_finds_a_named_topic_through_the_search_box(page, monitor_process, checkout):
    log_in(page)
    page.keyboard.press("/")
    search = page.locator("#global-q")
    expect(search).to_be_focused()
    search.press_sequentially("checkout.pay", delay=20)
    result = page.locator("#search-results").get_by_role("link", name="checkout.payments", exact=True)
    expect(result).to_be_visible()
    result.click()
    expect(page.get_by_role("heading", name="checkout.payments", exact=True)).to_be_visible()


def test_an_operator_finds_the_topic_in_trouble_through_the_graph_and_its_neighbourhood(
    page, monitor_process, checkout
):
    log_in(page)
    node = page.locator('#topology a[data-node="topic:checkout.payments"]')
    expect(node).to_be_visible(timeout=20_000)  # its consumer is in trouble: drawn among a thousand
    expect(page.locator("#topology a.group").first).to_be_visible()  # the rest is folded into groups
    node.click()
    expect(page).to_have_url(re.compile(r"focus=topic:checkout\.payments"))
    expect(page.locator("#topology-title")).to_have_text("Flow: around topic checkout.payments")
    expect(page.locator('#topology a[data-node="consumer:checkout-fraud"]')).to_be_visible()
    expect(page.locator("#topology a.node-link")).to_have_count(2)  # the topic and its one consumer (no producer)
    page.get_by_role("link", name="Open checkout.payments’s page").click()
    expect(page.get_by_role("heading", name="checkout.payments", exact=True)).to_be_visible()


def test_an_operator_reads_a_consumers_failed_events_and_replays_one_from_its_page(
    page, monitor_process, checkout
):
    log_in(page, "/consumers/?status=trouble")
    expect(page.locator("#consumer-checkout-fraud")).to_be_visible()
    page.locator("#consumer-checkout-fraud a").first.click()
    rows = page.locator("#consumer-failed tr.failed-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("cannot handle odd n=")
    newest = FailedEvent.objects.filter(consumer__name="checkout-fraud").order_by("-last_failed_at", "-id")[0]
    event_id = newest.event_id
    expect(rows.first).to_contain_text(event_id)

    handlers.fix_flaky()
    row_id = rows.first.get_attribute("id")
    rows.first.get_by_role("button", name="Replay").click()
    expect(page.locator(f"#{row_id}")).to_contain_text(re.compile("Replaying|Resolved"))
    expect(page.locator(f"#{row_id}")).to_contain_text("Resolved", timeout=20_000)  # pushed live
    assert FailedEvent.objects.get(pk=int(row_id.rsplit("-", 1)[1])).status == FailedEvent.Status.RESOLVED


def test_screenshots_of_every_page_at_three_widths(page, monitor_process, checkout):
    failed = FailedEvent.objects.filter(consumer__name="checkout-fraud").order_by("pk")[0]
    pages = {
        "overview": "/",
        "focus": "/?focus=topic:checkout.payments",
        "topics": "/topics/?sort=-rate",
        "consumers": "/consumers/",
        "consumer": "/consumers/checkout-fraud/",
        "failed": "/failed/",
        "topic": "/topics/checkout.payments/",
        "event": f"/topics/checkout.payments/events/{failed.stream_id}/",
        "search": "/search/?q=checkout",
    }
    log_in(page)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            page.goto(path)
            if name != "search":  # the search page has no socket
                expect(page.locator("#conn")).to_have_attribute("data-state", "live")
            screenshot(page, f"scale-{width}-{name}")
            if width == 1280 and name in ("overview", "consumer"):  # and in dark mode, as the system asks
                page.emulate_media(color_scheme="dark")
                screenshot(page, f"scale-{width}-{name}-dark")
                page.emulate_media(color_scheme="light")
            if name in ("consumer", "failed") and width >= 1280:  # wide enough: no button behind a scroll
                assert_discard_inside_its_card(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} at {width} px is {overflow} px wider than the screen: {wide(page)}"


WIDEST = """(() => {
  const edge = document.documentElement.clientWidth + 1;
  const clipped = (e) => { for (let a = e.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== "visible") return true; } return false; };
  return Array.from(document.querySelectorAll("body *"))
    .filter(e => e.getBoundingClientRect().right > edge && !clipped(e))
    .slice(0, 6).map(e => e.outerHTML.slice(0, 160));
})()"""


def wide(page) -> list[str]:
    """The elements that stick out past the right edge (tables scroll inside their card, so not those)."""
    return page.evaluate(WIDEST)


DISCARD_OVERHANG = """(() => {
  const button = Array.from(document.querySelectorAll("tr.failed-row button"))
    .find(b => b.textContent.trim() === "Discard");
  if (!button) return null;
  const inner = button.getBoundingClientRect(), outer = button.closest(".table-scroll").getBoundingClientRect();
  return inner.right - outer.right;
})()"""


def assert_discard_inside_its_card(page) -> None:
    """The first Discard button ends inside its scrolling card. Measured in one script, because live
    updates swap failed rows in and out: a row located a moment earlier may be gone by the next call."""
    expect(page.locator("tr.failed-row button", has_text="Discard").first).to_be_visible()
    overhang = page.evaluate(DISCARD_OVERHANG)
    assert overhang is not None and overhang <= 0.5, f"the Discard button sticks {overhang} px out of its card"
