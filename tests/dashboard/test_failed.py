"""The failed-events page: filters, keyset pages, Replay (one, selected, all matching), discard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventflow import keys, replays
from eventflow.connection import get_redis
from eventflow.models import FailedEvent, Replay

Status = FailedEvent.Status


def fail(consumer, topic, n: int, *, error: str = "boom", status: str = Status.FAILED, minutes_ago: int = 0):
    return FailedEvent.objects.create(
        consumer=consumer,
        topic=topic,
        event_id=f"ev-{consumer.name}-{n}",
        event_type="order.created",
        event={"id": f"ev-{consumer.name}-{n}", "type": "order.created", "data": {"n": n}, "topic": topic.name},
        error=error,
        status=status,
        last_failed_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
    )


def scheduled(topic: str, consumer: str) -> list[str]:
    return [m.decode() for m in get_redis().zrange(keys.retry_schedule(topic, consumer), 0, -1)]


def test_it_lists_open_failed_events_with_their_error_as_inert_text(operator, orders, billing):
    fail(billing, orders, 1, error="<img src=x onerror=alert(1)> went wrong")
    fail(billing, orders, 2, status=Status.RESOLVED)
    html = operator.get("/failed/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt; went wrong" in html
    assert "<img src=x" not in html
    assert html.count('class="failed-row"') == 1


def test_filters_narrow_the_list(operator, orders, payments, billing, shipping):
    fail(billing, orders, 1, error="card declined")
    fail(shipping, orders, 2, error="no address")
    fail(billing, orders, 3, error="timeout", minutes_ago=120)

    def rows(query: str) -> int:
        return operator.get(f"/failed/?{query}").content.decode().count('class="failed-row"')

    assert rows("consumer=billing") == 2
    assert rows("q=DECLINED") == 1
    assert rows("since=" + (timezone.now() - dt.timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M")) == 2
    assert rows("topic=payments") == 0
    assert rows("status=all") == 3


def test_pages_follow_each_other_without_gaps_or_repeats(operator, orders, billing):
    for n in range(120):
        fail(billing, orders, n, minutes_ago=n % 7)
    seen, url = [], "/failed/"
    while url:
        response = operator.get(url, headers={"HX-Request": "true", "HX-Target": "failed-table"})
        html = response.content.decode()
        seen += [int(part.split('"')[0]) for part in html.split('id="failed-row-')[1:]]
        url = ""
        if "Next page" in html:
            url = "/failed/" + html.split("Next page")[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert len(seen) == 120 and len(set(seen)) == 120


def test_replay_one_sends_the_event_to_that_consumer_only_and_shows_it_replaying(operator, orders, billing):
    row = fail(billing, orders, 1)
    response = operator.post(f"/failed/{row.pk}/replay")
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="failed-row-{row.pk}"')
    assert "Replaying" in html
    assert scheduled("orders", "billing") == [f"replay:{row.pk}"]
    assert scheduled("orders", "shipping") == []


def test_replay_needs_the_permission(client, django_user_model, orders, billing):
    viewer = django_user_model.objects.create_user("viewer", password="pw-12345678", is_staff=True)
    client.force_login(viewer)
    row = fail(billing, orders, 1)
    assert client.post(f"/failed/{row.pk}/replay").status_code == 403
    assert "Replay selected" not in client.get("/failed/").content.decode()


def test_replay_is_a_post_with_a_csrf_token(orders, billing, staff_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    row = fail(billing, orders, 1)
    assert browser.post(f"/failed/{row.pk}/replay").status_code == 403
    assert browser.get(f"/failed/{row.pk}/replay").status_code == 405


def test_replay_selected_replays_the_chosen_rows(operator, orders, billing):
    rows = [fail(billing, orders, n) for n in range(3)]
    html = operator.post("/failed/replay-selected", {"ids": [rows[0].pk, rows[2].pk]}).content.decode()
    assert "Replaying 2 failed events." in html
    assert sorted(scheduled("orders", "billing")) == sorted([f"replay:{rows[0].pk}", f"replay:{rows[2].pk}"])


def test_replay_all_matching_states_the_count_then_starts_one_job_per_lane(operator, orders, billing, shipping):
    for n in range(4):
        fail(billing, orders, n)
    fail(billing, orders, 7, error="other")
    fail(shipping, orders, 9)
    confirm = operator.get("/failed/replay-all?consumer=billing&q=boom").content.decode()
    assert "Replay 4 failed events" in confirm and 'name="reason"' in confirm and 'name="rate"' in confirm
    assert scheduled("orders", "billing") == []

    form = {"consumer": "billing", "q": "boom", "status": "open", "rate": "50", "reason": "the card API is back"}
    html = operator.post("/failed/replay-all/confirmed", form).content.decode()

    job = Replay.objects.get()
    assert "Replaying 4 failed events as replay" in html and f'id="bulk-replay-{job.pk}"' in html
    assert (job.source, job.consumer, job.matched, job.rate, job.reason) == ("failed", billing, 4, 50.0, form["reason"])
    assert job.requested_by.get_username() == "operator"
    selection = replays.Selection.from_json(job.selection)
    assert selection == replays.Selection(error="boom")
    assert replays.failed_rows(billing, orders, replays.Filters(), selection).count() == 4


def test_replay_all_matching_asks_for_a_reason_and_a_sane_rate_first(operator, orders, billing):
    fail(billing, orders, 1)
    no_reason = operator.post("/failed/replay-all/confirmed", {"consumer": "billing"}).content.decode()
    bad_rate = operator.post("/failed/replay-all/confirmed", {"rate": "-3", "reason": "fixed"}).content.decode()

    assert "Say why" in no_reason and "Replay 1 failed event" in no_reason
    assert "rate" in bad_rate and "must be a number above 0" in bad_rate
    assert not Replay.objects.exists()


def test_discard_closes_a_row(operator, orders, billing):
    row = fail(billing, orders, 1)
    html = operator.post(f"/failed/{row.pk}/discard").content.decode()
    assert "Discarded" in html
    row.refresh_from_db()
    assert row.status == Status.DISCARDED


@pytest.mark.parametrize("target", ["failed-table", "failed-summary"])
def test_the_live_partials_render_alone(operator, orders, billing, target):
    fail(billing, orders, 1)
    html = operator.get("/failed/", headers={"HX-Request": "true", "HX-Target": target}).content.decode()
    assert html.lstrip().startswith(f'<section id="{target}"')


def test_discard_selected_discards_the_chosen_rows_only(operator, orders, billing):
    rows = [fail(billing, orders, n) for n in range(3)]
    html = operator.post("/failed/discard-selected", {"ids": [rows[0].pk, rows[2].pk]}).content.decode()
    assert "Discarded 2 failed events." in html
    statuses = {row.pk: row.status for row in FailedEvent.objects.all()}
    assert statuses == {rows[0].pk: Status.DISCARDED, rows[1].pk: Status.FAILED, rows[2].pk: Status.DISCARDED}
    assert scheduled("orders", "billing") == []


def test_discard_selected_without_a_selection_says_so(operator, orders, billing):
    fail(billing, orders, 1)
    html = operator.post("/failed/discard-selected", {}).content.decode()
    assert "Select failed events first." in html
    assert FailedEvent.objects.get().status == Status.FAILED


def test_discard_all_matching_states_the_count_before_discarding(operator, orders, billing, shipping):
    for n in range(3):
        fail(billing, orders, n)
    fail(billing, orders, 7, status=Status.REPLAYING)
    fail(shipping, orders, 9)
    confirm = operator.get("/failed/discard-all?consumer=billing").content.decode()
    assert "Discard 3 failed events" in confirm
    assert FailedEvent.objects.filter(status=Status.DISCARDED).count() == 0
    html = operator.post("/failed/discard-all/confirmed", {"consumer": "billing", "status": "open"}).content.decode()
    assert "Discarded 3 failed events." in html
    assert FailedEvent.objects.filter(status=Status.DISCARDED).count() == 3
    assert FailedEvent.objects.get(consumer=shipping).status == Status.FAILED
    assert FailedEvent.objects.get(event_id="ev-billing-7").status == Status.REPLAYING  # in flight: left alone


@pytest.mark.parametrize(
    ("method", "url"),
    [("post", "/failed/discard-selected"), ("post", "/failed/discard-all/confirmed"), ("post", "/failed/1/discard")],
)
def test_discard_needs_the_change_permission(client, django_user_model, orders, billing, method, url):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("replayer", password="pw-12345678", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="replay_failedevent"))
    client.force_login(viewer)
    row = fail(billing, orders, 1)
    response = getattr(client, method)(url.replace("/1/", f"/{row.pk}/"), {"ids": [row.pk], "status": "open"})
    assert response.status_code == 403
    assert FailedEvent.objects.get().status == Status.FAILED
    page = client.get("/failed/").content.decode()
    assert "Discard selected" not in page and "Replay selected" in page
    assert "You may not discard" in client.get("/failed/discard-all").content.decode()


@pytest.mark.parametrize("url", ["/failed/discard-selected", "/failed/discard-all/confirmed"])
def test_bulk_discard_is_a_post_with_a_csrf_token(orders, billing, staff_user, url):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    row = fail(billing, orders, 1)
    assert browser.post(url, {"ids": [row.pk]}).status_code == 403
    assert browser.get(url).status_code == 405
    assert FailedEvent.objects.get().status == Status.FAILED
