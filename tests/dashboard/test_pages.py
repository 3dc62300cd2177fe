"""Overview, topic, event and consumer pages, and each of their live partials."""

from __future__ import annotations

import datetime as dt
import re

from dashboard.live_pages import PAGES
from eventflow import keys
from eventflow.connection import get_redis
from eventflow.publishing import publish
from tests.helpers import subscribe


def htmx_get(client, url: str, target: str):
    return client.get(url, headers={"HX-Request": "true", "HX-Target": target})


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_staff_without_the_flag_cannot_see_the_dashboard(client, django_user_model):
    user = django_user_model.objects.create_user("someone", password="pw-12345678")
    client.force_login(user)
    assert client.get("/").status_code == 302


def test_the_overview_draws_the_topology_with_links_to_each_node(operator, orders, billing, shop):
    html = operator.get("/").content.decode()
    assert '<svg class="topology"' in html
    assert 'href="/topics/orders/"' in html
    assert 'href="/consumers/billing/"' in html
    assert ">shop</text>" in html


def test_the_overview_lists_consumers_with_status_and_reason(operator, orders, billing):
    subscribe(billing)
    publish("orders", {"n": 1}, type="order.created")
    html = operator.get("/").content.decode()
    assert 'id="consumer-table"' in html
    assert "STOPPED" in html
    assert "no live worker; backlog 1" in html


def test_the_overview_shows_the_durability_mode_and_warns_when_redis_keeps_nothing(operator, orders, settings):
    from eventflow.status import broker_status

    html = operator.get("/").content.decode()

    durability = broker_status()["durability"]
    assert f'<span class="stat-value">{durability}</span><span class="stat-label"' in html
    assert ("keeps nothing on disk" in html) == (durability == "none")


def test_the_overview_raises_events_retention_cut_before_a_consumer_acked_them(operator, orders, billing):
    from eventflow import publish_batch, retention

    subscribe(billing)
    publish_batch("orders", [{"type": "order.created", "data": {"n": n}} for n in range(12)])

    retention.trim("orders", max_events=5, max_age_seconds=None)
    html = operator.get("/").content.decode()

    assert "Retention cut 7 events before their consumers acknowledged them" in html
    assert ">lost 7</span>" in html


def test_an_htmx_request_gets_only_the_partial_it_targets(operator, orders, billing):
    response = htmx_get(operator, "/", "consumer-table")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="consumer-table"')
    assert "<html" not in html
    assert "hx-swap-oob" not in html


def test_every_page_carries_a_content_security_policy(operator, orders, billing, client):
    for url in ["/", "/topics/orders/", "/consumers/billing/", "/failed/"]:
        policy = operator.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    client.logout()
    assert "default-src 'self'" in client.get("/login/")["Content-Security-Policy"]


def test_htmx_and_its_websocket_extension_are_served_by_the_project(operator, db):
    from django.templatetags.static import static

    html = operator.get("/").content.decode()
    # Hashed names where collectstatic ran (dashboard.static_files), the plain ones where it did not.
    assert f'src="{static("django_htmx/htmx-2.min.js")}"' in html
    assert f'src="{static("django_htmx/ext/hx-ws-2.min.js")}"' in html
    assert f'ws-connect="{PAGES["overview"].socket_path()}"' in html
    assert "://cdn" not in html and "unpkg" not in html


def test_the_topic_page_shows_the_newest_events_as_inert_text(operator, orders):
    publish("orders", {"note": "<script>alert(1)</script>"}, type="<b>order.created</b>", key="k-<i>1</i>")
    html = operator.get("/topics/orders/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;order.created&lt;/b&gt;" in html
    assert '<tbody id="tail-rows" hx-disable>' in html


def test_the_topic_stats_partial_has_a_rate_chart(operator, orders, billing):
    html = htmx_get(operator, "/topics/orders/", "topic-stats").content.decode()
    assert html.lstrip().startswith('<section id="topic-stats"')
    assert '<svg class="chart"' in html


def test_browsing_pages_back_through_the_stream(operator, orders):
    for n in range(30):
        publish("orders", {"n": n}, type="order.created")
    html = htmx_get(operator, "/topics/orders/", "browse").content.decode()
    assert html.count('class="mono"><a href="/topics/orders/events/') == 25
    assert "Older →" in html
    ids = [sid.decode() for sid, _ in get_redis().xrange(keys.stream("orders"))]
    older = htmx_get(operator, f"/topics/orders/?from={ids[4]}", "browse").content.decode()
    assert older.count('class="mono"><a href="/topics/orders/events/') == 5
    assert "Older →" not in older


def test_browsing_from_a_time_goes_forward_from_it(operator, orders):
    publish("orders", {"n": 1}, type="order.created")
    html = htmx_get(operator, "/topics/orders/?at=2000-01-01T00:00", "browse").content.decode()
    assert html.count('class="mono"><a href="/topics/orders/events/') == 1
    assert "Oldest first, from 2000-01-01T00:00 UTC on." in html
    later = htmx_get(operator, "/topics/orders/?at=2999-01-01T00:00:00", "browse").content.decode()
    assert "No events here." in later
    assert "give the time as YYYY-MM-DDTHH:MM" in htmx_get(operator, "/topics/orders/?at=yesterday", "browse").content.decode()


def test_browsing_forward_from_a_second_pages_with_newer_and_older(operator, orders):
    for n in range(30):
        publish("orders", {"n": n}, type="order.created")
    ids = [sid.decode() for sid, _ in get_redis().xrange(keys.stream("orders"))]
    first_ms = int(ids[2].split("-")[0])
    at = dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    html = htmx_get(operator, f"/topics/orders/?at={at}", "browse").content.decode()
    shown = re.findall(r'class="mono"><a href="/topics/orders/events/([0-9-]+)/"', html)
    from_second = [i for i in ids if int(i.split("-")[0]) >= first_ms // 1000 * 1000]
    assert shown == from_second[:25]  # oldest first, from the start of that second
    newer = htmx_get(operator, f"/topics/orders/?after={shown[-1]}", "browse").content.decode()
    rest = re.findall(r'class="mono"><a href="/topics/orders/events/([0-9-]+)/"', newer)
    assert rest == ids[ids.index(shown[-1]) + 1 :]
    assert "Newer →" not in newer and "← Older" in newer
    older = htmx_get(operator, f"/topics/orders/?before={rest[0]}", "browse").content.decode()
    assert re.findall(r'class="mono"><a href="/topics/orders/events/([0-9-]+)/"', older)[0] == shown[-1]


def test_the_publish_form_publishes_a_test_event(operator, orders):
    response = operator.post("/topics/orders/publish", {"type": "test.ping", "key": "k1", "data": '{"hello": "world"}'})
    assert "Published event" in response.content.decode()
    ((_, fields),) = get_redis().xrange(keys.stream("orders"))
    assert b'"hello":"world"' in fields[b"e"]


def test_the_publish_form_names_bad_json(operator, orders):
    html = operator.post("/topics/orders/publish", {"type": "t", "data": "{nope"}).content.decode()
    assert "Data is not valid JSON" in html
    assert get_redis().xlen(keys.stream("orders")) == 0


def test_the_event_page_shows_the_envelope_and_a_delivery_matrix(operator, orders, billing, shipping):
    subscribe(billing, shipping)
    publish("orders", {"n": 7}, type="order.created")
    sid = get_redis().xrange(keys.stream("orders"))[0][0].decode()
    html = operator.get(f"/topics/orders/events/{sid}/").content.decode()
    assert "&quot;n&quot;: 7" in html
    assert html.count("not yet delivered") >= 2
    assert 'id="delivery-matrix"' in html


def test_an_unknown_event_is_a_404(operator, orders):
    assert operator.get("/topics/orders/events/1-0/").status_code == 404
    assert operator.get("/topics/orders/events/nonsense/").status_code == 404


def test_the_consumer_page_shows_health_charts_and_workers(operator, orders, billing):
    html = operator.get("/consumers/billing/").content.decode()
    for region in ('id="consumer-health"', 'id="consumer-charts"', 'id="consumer-workers"'):
        assert region in html
    assert "No worker is running this consumer." in html


def test_unknown_topics_and_consumers_are_404(operator, db):
    assert operator.get("/topics/nope/").status_code == 404
    assert operator.get("/consumers/nope/").status_code == 404


def test_publishing_a_test_event_takes_a_named_permission(client, orders, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw-12345678", is_staff=True)
    client.force_login(clerk)

    assert "takes the “Can publish test events" in client.get("/topics/orders/").content.decode()
    reply = client.post("/topics/orders/publish", {"type": "test.ping", "data": "{}"})

    assert reply.status_code == 403
    assert get_redis().exists(keys.stream("orders")) == 0


def test_topic_and_consumer_charts_offer_five_minutes_an_hour_and_a_day(operator, orders, billing):
    for path in ("/topics/orders/", "/consumers/billing/"):
        html = operator.get(path).content.decode()
        assert '<div class="ranges" data-range="5m">' in html
        for key in ("5m", "1h", "24h"):
            assert f'data-range-choice="{key}"' in html and f'range-{key}"' in html


def test_every_page_names_its_icon_and_favicon_ico_leads_to_it(operator, orders):
    assert 'rel="icon" href="/static/dashboard/favicon.svg"' in operator.get("/").content.decode()
    response = operator.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/dashboard/favicon.svg"


def test_the_topic_page_tells_its_script_and_its_reader_the_tail_cap(operator, orders):
    from dashboard.live import TAIL_PAGE_ROWS

    html = operator.get("/topics/orders/").content.decode()
    assert f'<table class="data tail" data-keep="{TAIL_PAGE_ROWS}">' in html
    assert f"the last {TAIL_PAGE_ROWS} stay on the page" in html
