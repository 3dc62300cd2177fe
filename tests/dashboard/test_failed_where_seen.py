"""Failed events acted on where they are seen: the consumer page, the failed-events page, the event."""

from __future__ import annotations

import orjson
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError

from dashboard.failed_live import consumer_failed_html
from dashboard.live_pages import PAGES
from eventflow import keys
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent
from eventflow.publishing import publish

from .test_failed import fail


def test_the_consumer_page_lists_its_open_failed_events_with_event_id_replay_and_discard(operator, orders, billing):
    row = fail(billing, orders, 1, error="card declined")
    html = operator.get("/consumers/billing/").content.decode()
    section = html[html.index('id="consumer-failed"') :]
    assert "ev-billing-1" in section
    assert f'hx-post="/failed/{row.pk}/replay"' in section
    assert f'hx-post="/failed/{row.pk}/discard"' in section


def test_the_consumer_pages_failed_table_is_pushed_with_the_buttons_its_user_may_press(
    orders, billing, staff_user, django_user_model
):
    fail(billing, orders, 1)
    assert "/replay" in consumer_failed_html("billing", staff_user)
    watcher = django_user_model.objects.create_user("watcher", password="pw-12345678", is_staff=True)
    html = consumer_failed_html("billing", watcher)
    assert 'hx-swap-oob="true"' in html and "ev-billing-1" in html
    assert "/replay" not in html
    assert html.count('hx-swap-oob="true"') == 1  # the rows inside are not swapped on their own


def test_a_replay_from_the_consumer_page_turns_its_row_replaying(operator, orders, billing):
    row = fail(billing, orders, 1)
    operator.post(f"/failed/{row.pk}/replay", headers={"HX-Request": "true"})
    html = operator.get("/consumers/billing/").content.decode()
    assert "Replaying" in html[html.index('id="consumer-failed"') :]


def test_the_failed_events_page_shows_the_full_error_and_traceback_on_demand(operator, orders, billing):
    row = fail(billing, orders, 1, error="RiskServiceTimeout: " + "x" * 300)
    FailedEvent.objects.filter(pk=row.pk).update(traceback='Traceback (most recent call last):\n  File "fraud.py"')
    html = operator.get("/failed/").content.decode()
    assert '<details class="error-more">' in html
    assert "x" * 300 in html
    assert "Traceback (most recent call last):" in html


def test_a_failed_row_links_to_its_event_and_the_event_back_to_its_failed_rows(operator, orders, billing):
    publish("orders", {"n": 1}, type="order.created")
    sid, fields = get_redis().xrange(keys.stream("orders"), count=1)[0]
    envelope = orjson.loads(fields[b"e"])
    row = fail(billing, orders, 1)
    FailedEvent.objects.filter(pk=row.pk).update(event_id=envelope["id"], stream_id=sid.decode())
    failed = operator.get("/failed/").content.decode()
    assert f'href="/topics/orders/events/{sid.decode()}/"' in failed
    detail = operator.get(f"/topics/orders/events/{sid.decode()}/").content.decode()
    assert "Failed deliveries of this event" in detail
    assert f"/failed/?event={envelope['id']}&amp;status=all" in detail


def test_the_failed_events_page_filters_one_event(operator, orders, billing, shipping):
    fail(billing, orders, 1)
    fail(shipping, orders, 2)
    html = operator.get("/failed/?event=ev-billing-1").content.decode()
    assert html.count('class="failed-row"') == 1


def test_the_admin_refuses_an_event_type_pattern_that_cannot_match(orders):
    consumer = Consumer(name="signups", handler="tests.handlers.billing", event_types="user.created, [signup")
    try:
        consumer.full_clean()
    except ValidationError as exc:
        message = str(exc.message_dict["event_types"])
    else:
        raise AssertionError("an unclosed bracket was accepted")
    assert "'[signup': an unclosed '['" in message
    assert "* any run of characters" in message


def test_the_admin_accepts_globs_that_mean_what_they_say(orders):
    patterns = "order.*, user.sign[iu]?, refund.created"
    Consumer(name="ok", handler="tests.handlers.billing", event_types=patterns).full_clean()


def test_the_consumer_page_shows_its_pattern_and_filtered_count(operator, orders):
    Consumer.objects.create(name="orders-only", handler="tests.handlers.billing", event_types="order.*").topics.add(
        orders
    )
    html = operator.get("/consumers/orders-only/").content.decode()
    assert '<code class="pattern">order.*</code>' in html
    assert "filtered (total)" in html


def test_a_socket_on_a_consumer_page_gets_its_failed_table_on_connect(
    transactional_db, client, staff_user, orders, billing
):
    from .test_consumers import _open, session_headers

    fail(billing, orders, 1)
    headers = session_headers(client, staff_user)

    async def scenario() -> str:
        socket, connected = await _open(PAGES["consumer"].socket_path("billing"), headers)
        assert connected
        html = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return html

    html = async_to_sync(scenario)()
    assert 'id="consumer-failed"' in html and "ev-billing-1" in html


def test_a_failed_page_is_sent_status_changes_only_for_the_rows_it_shows(orders, billing, staff_user):
    from dashboard.failed_live import FailedWatch

    shown, other = fail(billing, orders, 1), fail(billing, orders, 2)
    watch = FailedWatch.from_form({"watch": "failed", "consumer": "billing", "shown": f"{shown.pk}"})
    assert watch.on_page([shown.pk, other.pk]) == [shown.pk]  # no swap without a target on this page
    fresh = fail(billing, orders, 3)
    assert f'id="failed-row-{fresh.pk}"' in watch.push(staff_user)  # a row pushed in is on the page from then on
    assert watch.on_page([fresh.pk]) == [fresh.pk]


def test_the_failed_page_tells_its_socket_which_rows_it_shows(operator, orders, billing):
    rows = [fail(billing, orders, n) for n in range(3)]
    html = operator.get("/failed/").content.decode()
    listed = ",".join(str(r.pk) for r in sorted(rows, key=lambda r: (r.last_failed_at, r.pk), reverse=True))
    assert f'name="shown" value="{listed}"' in html
