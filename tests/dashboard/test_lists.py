"""The topics and consumers lists, and the header's search."""

from __future__ import annotations

from django.utils.html import escape

from dashboard import listing, live
from dashboard.live_pages import PAGES
from eventflow.models import FailedEvent, Topic
from eventflow.publishing import publish
from tests.helpers import make_consumer, subscribe


def many_topics(count: int) -> list[Topic]:
    return Topic.objects.bulk_create([Topic(name=f"cart.t{n:03d}", stream_name=f"cart.t{n:03d}") for n in range(count)])


def test_it_lists_topics_fifty_to_a_page_with_a_link_to_the_next(operator, orders):
    many_topics(60)
    html = operator.get("/topics/").content.decode()
    assert html.count('<tr id="topic-') == listing.PAGE_ROWS
    assert "1–50 of 61" in html
    assert 'href="?page=2">Next' in html
    second = operator.get("/topics/?page=2").content.decode()
    assert second.count('<tr id="topic-') == 11


def test_it_finds_topics_by_a_part_of_their_name(operator, orders):
    many_topics(12)
    html = operator.get("/topics/?q=t01").content.decode()
    assert 'id="topic-cart.t010"' in html and 'id="topic-cart.t011"' in html
    assert 'id="topic-orders"' not in html
    assert "1–2 of 2 matching (of 13)" in html


def test_it_sorts_consumers_by_lag_biggest_first(operator, orders):
    quiet, busy = make_consumer("quiet", "tests.handlers.billing", orders), None
    busy_topic = Topic.objects.create(name="busy")
    busy = make_consumer("busy", "tests.handlers.billing", busy_topic)
    subscribe(quiet, busy)
    for n in range(3):
        publish("busy", {"n": n}, type="t")
    html = operator.get("/consumers/?sort=-lag").content.decode()
    assert html.index('id="consumer-busy"') < html.index('id="consumer-quiet"')
    again = operator.get("/consumers/?sort=lag").content.decode()
    assert again.index('id="consumer-quiet"') < again.index('id="consumer-busy"')


def test_it_filters_consumers_in_trouble(operator, orders, payments, billing):
    idle = make_consumer("idle", "tests.handlers.billing", payments)
    subscribe(billing, idle)
    publish("orders", {"n": 1}, type="order.created")
    html = operator.get("/consumers/?status=trouble").content.decode()
    assert 'id="consumer-billing"' in html  # no live worker with a backlog: STOPPED
    assert 'id="consumer-idle"' not in html


def test_a_list_socket_is_named_by_the_query_the_view_reads(operator, orders):
    html = operator.get("/consumers/?q=bill&sort=-rate&page=1&junk=1").content.decode()
    consumers = PAGES["consumers"]
    assert f'ws-connect="{escape(consumers.socket_path(query="q=bill&sort=-rate"))}"' in html
    assert consumers.live_name("", "junk=1&sort=-rate&q=bill") == "q=bill&sort=-rate"
    assert live.group_name("consumers", "q=bill&sort=-rate").startswith("ef.consumers.h")


def test_a_pushed_list_renders_only_the_rows_of_its_query(orders, billing, shipping):
    html = PAGES["consumers"].render_partials("q=ship", {"consumers": [], "topics": []} | _snapshot())
    assert 'id="consumer-list" class="card" aria-label="Consumers" hx-swap-oob="true"' in html
    assert 'id="consumer-shipping"' in html and 'id="consumer-billing"' not in html


def _snapshot() -> dict:
    from eventflow.monitor import load_snapshot

    return load_snapshot()


def test_the_search_finds_topics_consumers_and_producers_by_name(operator, orders, billing, shop):
    html = operator.get("/search/?q=o", headers={"HX-Request": "true", "HX-Target": "search-results"}).content.decode()
    assert html.lstrip().startswith('<div id="search-results"')
    assert 'href="/topics/orders/"' in html
    assert ">shop</a>" in html
    assert 'href="/consumers/billing/"' not in html  # no "o" in billing


def test_the_search_finds_an_event_by_its_id_among_failed_events(operator, orders, billing):
    FailedEvent.objects.create(
        consumer=billing,
        topic=orders,
        event_id="ev-42",
        stream_id="1700000000000-0",
        event_type="t",
        event={},
        error="x",
    )
    html = operator.get("/search/?q=ev-42").content.decode()
    assert "ev-42" in html
    assert 'href="/topics/orders/events/1700000000000-0/"' in html


def test_the_header_links_to_the_lists_and_holds_the_search(operator, orders):
    html = operator.get("/").content.decode()
    assert 'href="/topics/"' in html and 'href="/consumers/"' in html
    assert 'aria-keyshortcuts="/"' in html
