"""Each live page is described once: the socket paths browsers open are drawn from it."""

from __future__ import annotations

import pytest

from dashboard import routing
from dashboard.live_pages import PAGES
from dashboard.params import BadParam


def test_each_page_names_its_socket_by_its_path_or_its_query():
    # The one place the socket URLs are spelled: eventflow.js and the browsers take them from the page.
    assert PAGES["overview"].socket_path() == "/ws/live/overview/"
    assert PAGES["overview"].socket_path(query="focus=topic%3Aorders") == "/ws/live/overview/?focus=topic%3Aorders"
    assert PAGES["topic"].socket_path("orders", query="after=1-0") == "/ws/live/topic/orders/?after=1-0"
    assert PAGES["event"].socket_path("orders/1-0") == "/ws/live/event/orders/1-0/"
    assert PAGES["consumers"].socket_path(query="q=bill") == "/ws/live/consumers/?q=bill"


def test_a_list_page_is_named_by_its_query_and_a_path_page_by_its_path():
    assert PAGES["overview"].live_name("", "focus=topic:orders&junk=1") == "topic:orders"
    with pytest.raises(BadParam):  # refused as the overview itself refuses it (a 400)
        PAGES["overview"].live_name("", "focus=nothing")
    assert PAGES["topics"].live_name("", "sort=-rate&junk=1") == "sort=-rate"
    assert PAGES["topic"].live_name("orders", "after=1-0") == "orders"


def test_the_socket_routes_are_the_pages_routes():
    assert [p.pattern.regex.pattern for p in routing.websocket_urlpatterns] == [
        page.socket_route for page in PAGES.values()
    ]
