"""Issue 9, case 8: hostile values in every dashboard URL and form get a 4xx, never a 500.

Every route of ``dashboard/urls.py`` outside the admin and the API is listed
below with the parameters its view reads (path, query and form). A staff
user throws each hostile value at each parameter in turn: stream ids past 64
bits or in digits Python's ``int()`` accepts but Redis does not (``١``,
``²``), datetimes at the edges of what Python can hold (``0001-01-01`` with an
offset, ``9999-12-31T23:59:59``), integers past 64 bits, empty values and NUL
bytes (10 representative values in CI, all 40 with ``EVENTFLOW_LONG=1``). A
test also fails if a route is added without being listed here.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.urls import URLPattern, URLResolver

from dashboard import urls
from eventflow.models import FailedEvent
from eventflow.publishing import publish

STREAM_IDS = [
    "18446744073709551616-0",  # 2**64: one past what Redis holds
    "1-18446744073709551616",
    "99999999999999999999999999-0",
    "١-٠",  # Arabic-Indic digits: str.isdigit() and int() accept them
    "²-0",  # a superscript: isdigit() is True, int() refuses it
    "1-²",
    "-1-0",
    "",
    "1\x00-0",
]
MOMENTS = [
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "0000-00-00",
    "２０２６-01-01",  # fullwidth digits
    "",
    "2026-01-01\x00",
]
CURSORS = [
    "0001-01-01T00:00:00+01:00|1",
    "9999-12-31T23:59:59-01:00|1",
    "2026-01-01T00:00:00+00:00|99999999999999999999",
    "2026-01-01T00:00:00+00:00|²",
    "2026-01-01T00:00:00+00:00|١",
    "0001-01-01|1",
    "9999-12-31T23:59:59|1",
    "|",
    "\x00",
]
NUMBERS = ["99999999999999999999", "18446744073709551616", "²", "١٢", "-1", "0", "", "1\x00"]
TEXTS = ["", "\x00", "a\x00b", "x" * 5000, "%00", "' OR 1=1 --", "\ud7ff\ue000"]
ALL_HOSTILE = sorted(set(STREAM_IDS + MOMENTS + CURSORS + NUMBERS + TEXTS))
# CI: the values that found every 500 before the fix, one or two of each kind; EVENTFLOW_LONG=1: all 40.
CI_HOSTILE = [
    "18446744073709551616-0",
    "١-٠",
    "²-0",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-01-01T00:00:00+00:00|99999999999999999999",
    "2026-01-01T00:00:00+00:00|²",
    "99999999999999999999",
    "",
    "a\x00b",
]
HOSTILE = ALL_HOSTILE if os.environ.get("EVENTFLOW_LONG") == "1" else CI_HOSTILE
FILTERS = ["consumer", "topic", "type", "q", "since", "until", "status", "cursor"]
REPLAY_FORM = ["source", "topic", "from", "to", "types", "key", "rate", "reason"]
LIST = ["q", "status", "sort", "page"]
EDIT_FORM = ["data", "reason"]

# route name → (method, path template, path parameters, query/form parameters)
ROUTES = {
    "overview": ("GET", "/", [], ["cursor", "focus"]),
    "topics": ("GET", "/topics/", [], LIST),
    "consumers": ("GET", "/consumers/", [], LIST),
    "search": ("GET", "/search/", [], ["q"]),
    "demo-risk-service": ("POST", "/demo/risk-service", [], ["fixed"]),
    "favicon": ("GET", "/favicon.ico", [], []),
    "alerts": ("GET", "/alerts/", [], []),
    "metrics": ("GET", "/metrics", [], []),
    "sampler": ("GET", "/sampler/", [], []),
    "topic": ("GET", "/topics/{name}/", ["name"], ["from", "at", "before", "after"]),
    "topic-publish": ("POST", "/topics/{name}/publish", ["name"], ["type", "key", "data"]),
    "event": ("GET", "/topics/{name}/events/{stream_id}/", ["name", "stream_id"], []),
    "consumer": ("GET", "/consumers/{name}/", ["name"], []),
    "replay-preview": ("POST", "/consumers/{name}/replays/preview", ["name"], REPLAY_FORM),
    "replay-start": ("POST", "/consumers/{name}/replays/start", ["name"], REPLAY_FORM),
    "stuck-reclaim": ("POST", "/consumers/{name}/reclaim", ["name"], []),
    "stuck-dead-letter": ("POST", "/consumers/{name}/dead-letter", ["name"], ["topic", "stream_id"]),
    "stuck-skip-confirm": ("GET", "/consumers/{name}/skip-backlog", ["name"], ["topic", "cancel"]),
    "stuck-skip": ("POST", "/consumers/{name}/skip-backlog/confirmed", ["name"], ["topic"]),
    "stuck-pause": ("POST", "/consumers/{name}/pause", ["name"], ["paused"]),
    "replay": ("GET", "/replays/{pk}/", ["pk"], []),
    "replay-cancel": ("POST", "/replays/{pk}/cancel", ["pk"], []),
    "failed": ("GET", "/failed/", [], FILTERS),
    "failed-replay": ("POST", "/failed/{pk}/replay", ["pk"], []),
    "failed-discard": ("POST", "/failed/{pk}/discard", ["pk"], []),
    "failed-edit": ("GET", "/failed/{pk}/edit", ["pk"], []),
    "failed-edit-preview": ("POST", "/failed/{pk}/edit/preview", ["pk"], EDIT_FORM),
    "failed-edit-send": ("POST", "/failed/{pk}/edit/send", ["pk"], EDIT_FORM),
    "failed-replay-selected": ("POST", "/failed/replay-selected", [], ["ids", *FILTERS]),
    "failed-replay-confirm": ("GET", "/failed/replay-all", [], [*FILTERS, "cancel"]),
    "failed-replay-matching": ("POST", "/failed/replay-all/confirmed", [], [*FILTERS, "rate", "reason"]),
    "failed-replay-cancel": ("POST", "/failed/replays/{pk}/cancel", ["pk"], []),
    "failed-discard-selected": ("POST", "/failed/discard-selected", [], ["ids", *FILTERS]),
    "failed-discard-confirm": ("GET", "/failed/discard-all", [], [*FILTERS, "cancel"]),
    "failed-discard-matching": ("POST", "/failed/discard-all/confirmed", [], FILTERS),
}
NOT_DASHBOARD = {"login", "logout"}  # Django's own views; the admin and the API are included URLconfs
GOOD = {"name": "orders", "stream_id": "1-0", "pk": "1"}
CONSUMER_NAME = {"consumer": "billing"}
BROWSE = {"HX-Request": "true", "HX-Target": "browse"}


def dashboard_route_names() -> set[str]:
    return {p.name for p in urls.urlpatterns if isinstance(p, URLPattern)} - NOT_DASHBOARD


@pytest.fixture
def hostile_client(client, staff_user, orders, billing):
    """A staff session whose server errors come back as 500 answers instead of exceptions."""
    publish("orders", {"n": 1}, type="order.created")
    envelope = {"id": "e1", "type": "t", "source": "shop", "topic": "orders", "data": {"n": 1}}  # editable
    FailedEvent.objects.create(
        consumer=billing, topic=orders, event_id="e1", event_type="t", event=envelope, error="boom", status="failed"
    )
    staff_user.user_permissions.add(Permission.objects.get(codename="edit_failedevent_data"))
    client.force_login(staff_user)
    client.raise_request_exception = False
    return client


def answer(client, route: str, path_values: dict[str, str], params: dict[str, str]):
    """One request, in a savepoint: a request that broke the transaction does not break the next."""
    method, template, _, _ = ROUTES[route]
    values = {**GOOD, **(CONSUMER_NAME if template.startswith("/consumers/{name}") else {}), **path_values}
    path = template.format(**{k: _quote(v) for k, v in values.items()})
    with transaction.atomic():
        return client.get(path, params) if method == "GET" else client.post(path, params)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_every_dashboard_route_is_listed_here():
    assert dashboard_route_names() == set(ROUTES)
    included = [str(p.pattern) for p in urls.urlpatterns if isinstance(p, URLResolver)]
    assert sorted(included) == ["admin/", "api/v1/"]


def hostile_answers(client, route: str) -> list[str]:
    """Every (parameter, value) of ``route`` that got a 500, as text."""
    _, _, path_params, params = ROUTES[route]
    failures = []
    for value in HOSTILE:
        for name in path_params:
            if value and (status := answer(client, route, {name: value}, {}).status_code) >= 500:
                failures.append(f"{route} {name}={value!r}: {status}")
        for name in params:
            if (status := answer(client, route, {}, {name: value}).status_code) >= 500:
                failures.append(f"{route} ?{name}={value!r}: {status}")
    return failures


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_hostile_value_in_any_parameter_gets_a_server_error(hostile_client, route):
    failures = hostile_answers(hostile_client, route)

    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("since=0001-01-01T00:00:00%2B01:00", "since"),
        ("until=9999-12-31T23:59:59-01:00", "until"),
        ("cursor=2026-01-01T00:00:00%2B00:00|99999999999999999999", "cursor"),
        ("cursor=2026-01-01T00:00:00%2B00:00|%C2%B2", "cursor"),
        ("status=nonsense", "status"),
        ("q=a%00b", "q"),
    ],
)
def test_a_bad_filter_is_a_400_that_names_the_parameter(hostile_client, query, named):
    reply = hostile_client.get(f"/failed/?{query}")

    assert reply.status_code == 400
    assert named in reply.content.decode()


@pytest.mark.parametrize("stream_id", ["18446744073709551616-0", "%D9%A1-0", "%C2%B2-0"])
def test_an_event_path_with_a_stream_id_redis_cannot_hold_is_not_found(hostile_client, stream_id):
    assert hostile_client.get(f"/topics/orders/events/{stream_id}/").status_code == 404


@pytest.mark.parametrize("value", ["18446744073709551616-0", "١-0", "²-0"])
def test_browsing_from_a_stream_id_redis_cannot_hold_says_why_in_the_form(hostile_client, value):
    reply = hostile_client.get("/topics/orders/", {"from": value}, headers=BROWSE)

    assert reply.status_code == 200  # the browse form shows its own errors in place (htmx swaps only 2xx)
    assert "stream id" in reply.content.decode()


def test_the_largest_stream_id_redis_holds_is_browsed_from(hostile_client):
    largest = f"{2**64 - 1}-{2**64 - 1}"
    reply = hostile_client.get("/topics/orders/", {"from": largest}, headers=BROWSE)

    assert reply.status_code == 200
    assert "order.created" in reply.content.decode()


LIST_PAGES = ["/topics/", "/consumers/"]
BAD_LIST_QUERIES = [
    ("sort=nonsense", "sort", "must be one of"),  # unknown
    ("sort=--name", "sort", "must be one of"),
    ("status=nonsense", "status", "must be one of"),
    ("page=abc", "page", "page number from 1 to 10000"),  # malformed
    ("page=%C2%B2", "page", "page number"),
    ("page=0", "page", "page number"),
    ("page=10001", "page", "page number from 1 to 10000"),  # oversize
    ("page=99999999999999999999", "page", "page number"),
    ("q=a%00b", "q", "NUL"),
]


@pytest.mark.parametrize("path", LIST_PAGES)
@pytest.mark.parametrize(("query", "named", "says"), BAD_LIST_QUERIES)
def test_a_bad_list_parameter_is_a_400_that_names_it(hostile_client, path, query, named, says):
    reply = hostile_client.get(f"{path}?{query}")

    assert reply.status_code == 400
    assert reply.content.decode().startswith(f"{named}: ") and says in reply.content.decode()


@pytest.mark.parametrize(
    ("query", "named"),
    [("status=nonsense", "status"), (f"cursor={'x' * 3000}", "cursor"), ("since=yesterday", "since")],
)
def test_a_bad_failed_list_parameter_is_a_400_that_names_it(hostile_client, query, named):
    reply = hostile_client.get(f"/failed/?{query}")

    assert reply.status_code == 400 and reply.content.decode().startswith(f"{named}: ")


@pytest.mark.parametrize("path", LIST_PAGES)
def test_the_filter_forms_empty_values_and_every_offered_sort_are_accepted(hostile_client, path):
    from dashboard import listing

    sorts = listing.TOPIC_SORTS if path == "/topics/" else listing.CONSUMER_SORTS
    assert hostile_client.get(f"{path}?q=&status=&sort=&page=").status_code == 200
    assert hostile_client.get(f"{path}?q={'x' * 5000}&status=trouble&page=3").status_code == 200  # text is cut
    for column in sorts:
        assert hostile_client.get(path, {"sort": f"-{column}"}).status_code == 200, column


def test_an_overview_focus_that_names_no_node_is_a_400(hostile_client):
    assert hostile_client.get("/?focus=topic:orders").status_code == 200
    reply = hostile_client.get("/?focus=planet:mars")

    assert reply.status_code == 400 and reply.content.decode().startswith("focus: ")
