"""Issue 9, "the dashboard says which dependency is down": every page names it while it is down.

Redis stopped (a server this test owns, killed) and PostgreSQL stopped (a
cluster this test owns, stopped as a crash would, under a real web server):
each dashboard page either renders with a banner naming the dependency or
answers 503 with that banner, never a 500; the banner's own poll gets it too;
once the dependency is back the pages answer 200 with no banner, by
themselves. An evicting Redis is named on every page as well.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from eventflow import publish
from tests.reliability.conftest import use_broker
from tests.reliability.harness import wait
from tests.reliability.test_database_outage import manage, own_postgres  # noqa: F401 - the cluster fixture

PAGES = [
    "/",
    "/topics/",
    "/topics/orders/",
    "/consumers/",
    "/consumers/billing/",
    "/failed/",
    "/alerts/",
    "/search/?q=bill",
]
POLL = {"HX-Request": "true", "HX-Target": "sampler"}  # the banner's poll, as htmx sends it
RECOVER_WITHIN = 15.0


def named(html: str) -> set[str]:
    return set(re.findall(r'data-problem="([a-z_]+)"', html))


@pytest.fixture
def broker(own_redis, settings, transactional_db):
    """A Redis this test owns (and stops), this process pointed at it."""
    server = own_redis(appendonly=False)
    use_broker(settings, server.url)
    return server


def test_with_redis_stopped_every_page_names_redis_and_recovers_by_itself(broker, client, staff_user, billing):
    publish("orders", {"n": 1}, type="order.created")
    client.force_login(staff_user)
    before = {page: client.get(page).status_code for page in PAGES}

    broker.stop()
    down = {page: client.get(page) for page in PAGES}
    poll = client.get("/sampler/", headers=POLL)
    broker.start()
    started = time.monotonic()
    wait(lambda: all(client.get(page).status_code == 200 for page in PAGES), RECOVER_WITHIN, "every page to answer")
    recovered = time.monotonic() - started

    assert set(before.values()) == {200}
    for page, answer in down.items():
        assert answer.status_code in (200, 503), page
        assert "redis_down" in named(answer.content.decode()), page
    assert poll.status_code == 200 and named(poll.content.decode()) == {"redis_down"}  # it needs only the database
    assert all("redis_down" not in named(client.get(page).content.decode()) for page in PAGES)
    statuses = sorted({a.status_code for a in down.values()})
    print(f"\n[redis stopped] {len(PAGES)} pages named Redis (answers {statuses}); 200 again {recovered:.2f} s after")


def test_an_evicting_redis_is_named_on_every_page(own_redis, settings, client, staff_user, billing):
    server = own_redis(appendonly=False, extra=("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"))
    use_broker(settings, server.url)
    client.force_login(staff_user)

    for page in PAGES:
        answer = client.get(page)
        assert answer.status_code == 200 and "redis_evicting" in named(answer.content.decode()), page


def test_with_postgres_stopped_every_page_names_the_database_and_recovers_by_itself(
    scenario,
    fleet,
    own_postgres,  # noqa: F811
):
    db_url = own_postgres.create_database("ef")
    processes = fleet(DATABASE_URL=db_url)
    manage(processes.env, "migrate", "--verbosity", "0")
    setup = (
        "from django.contrib.auth.models import User; from tests.helpers import make_consumer;"
        "from eventflow.models import Topic;"
        "User.objects.create_user('operator', password='operator-pass-1', is_staff=True);"
        "make_consumer('billing', 'tests.handlers.billing', Topic.objects.create(name='orders'))"
    )
    manage(processes.env, "shell", "-c", setup)
    url = processes.web()
    browser = httpx.Client(base_url=url, timeout=10)
    browser.get("/login/")
    login = {"username": "operator", "password": "operator-pass-1", "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    assert browser.post("/login/", data=login, headers={"Referer": url + "/login/"}).status_code == 302
    before = {page: browser.get(page).status_code for page in PAGES}
    newcomer = httpx.Client(base_url=url, timeout=10)  # someone who has yet to log in
    newcomer.get("/login/")
    attempt = {**login, "csrfmiddlewaretoken": newcomer.cookies["csrftoken"]}

    own_postgres.stop()
    down = {page: browser.get(page) for page in PAGES}
    logging_in = newcomer.post("/login/", data=attempt, headers={"Referer": url + "/login/"})
    poll = browser.get("/sampler/", headers=POLL)
    own_postgres.start()
    started = time.monotonic()
    wait(lambda: all(browser.get(page).status_code == 200 for page in PAGES), RECOVER_WITHIN, "every page to answer")
    recovered = time.monotonic() - started

    assert set(before.values()) == {200}
    for page, answer in down.items():
        assert answer.status_code == 503, page  # the session itself is in the database
        assert "database_down" in named(answer.text) and "The database is unavailable" in answer.text, page
    assert poll.status_code == 503 and named(poll.text) == {"database_down"}
    assert logging_in.status_code == 503 and "database_down" in named(logging_in.text)  # not a 500
    assert all("database_down" not in named(browser.get(page).text) for page in PAGES)
    print(
        f"\n[postgres stopped] {len(PAGES)} pages answered 503 naming the database; 200 again {recovered:.2f} s after"
    )
