"""Issue 9 on the pages: a handler that does not import, infrastructure errors, parked dead letters.

The figures come from real workers stepped in-process and a real monitor
step; each is checked where an operator looks (the consumer page, the
consumers list, the overview) and in what the monitor pushes to an open
consumer page.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError

from dashboard.live_pages import PAGES
from eventflow import failures, monitor, publish
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer

BROKEN = "RuntimeError: settings for this handler are missing"


def sample() -> dict:
    """One monitor step, stored as the running monitor stores it."""
    return monitor.Monitor().step()


@pytest.fixture
def broken_handler(orders) -> None:
    make_consumer("typo", "tests.eventflow.broken_handler.handle", orders)
    publish("orders", {}, type="order.created")
    worker = Worker()
    worker.refresh()
    with pytest.raises(RuntimeError):
        worker.runners["typo"].run_once()
    worker.beat()


def test_the_consumer_page_shows_why_the_handler_does_not_import(operator, broken_handler):
    sample()

    html = operator.get("/consumers/typo/").content.decode()

    assert 'class="error-box" role="alert"' in html
    assert "The handler does not import" in html and BROKEN in html
    assert "attempts untouched" in html


def test_a_consumer_whose_handler_does_not_import_is_failing_from_the_first_sample(broken_handler):
    typo = next(c for c in sample()["consumers"] if c["name"] == "typo")
    assert (typo["status"], typo["reason"]) == ("FAILING", f"handler does not import: {BROKEN}")


def test_the_lists_mark_a_consumer_whose_handler_does_not_import(operator, broken_handler):
    sample()

    for url in ("/consumers/", "/"):
        html = operator.get(url).content.decode()
        assert f'<span class="tag tag-bad" title="{BROKEN}">handler does not import</span>' in html, url


def test_the_push_to_an_open_consumer_page_carries_the_import_error(broken_handler):
    pushed = PAGES["consumer"].render_partials("typo", sample())

    assert 'id="consumer-health"' in pushed and 'hx-swap-oob="true"' in pushed
    assert BROKEN in pushed


def test_infrastructure_errors_are_counted_apart_from_handler_failures(operator, orders):
    make_consumer("ledger", "tests.handlers.database_down_twice", orders, max_attempts=1, retry_initial=0.01)
    publish("orders", {}, type="order.created")
    drain(Worker(), until=lambda: handlers.seen("db_done"))
    sample()

    page = operator.get("/consumers/ledger/").content.decode()
    listed = operator.get("/consumers/").content.decode()
    overview = operator.get("/").content.decode()

    assert '<span class="stat-value">2</span><span class="stat-label">infrastructure errors (total)</span>' in page
    assert '<span class="stat-value">0</span><span class="stat-label" title="Gave up after the last attempt">' in page
    assert "they never use up an event's attempts" in page
    assert ">infra errors 2</span>" in listed and ">infra errors 2</span>" in overview


def test_dead_letters_the_database_refuses_are_shown_parked_in_redis(operator, orders, monkeypatch):
    make_consumer("strict", "tests.handlers.always_fails", orders, max_attempts=1)
    publish("orders", {}, type="order.created")

    def database_down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(failures, "_write_parked", database_down)
    drain(Worker(), until=lambda: True)
    pushed = PAGES["consumer"].render_partials("strict", sample())

    page = operator.get("/consumers/strict/").content.decode()
    stat = '<span class="stat-value">1</span><span class="stat-label">parked dead letters</span>'
    assert stat in page and stat in pushed
    assert "Parked dead letters are kept in Redis until the database takes them" in page
    assert ">parked 1</span>" in operator.get("/consumers/").content.decode()
