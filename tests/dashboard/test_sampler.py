"""The monitor inside web processes (dashboard.sampler): one samples, the rest stand by, pages say when none does."""

from __future__ import annotations

import time

import pytest

from dashboard import sampler
from eventflow import keys
from eventflow.connection import get_redis
from tests.helpers import wait_for


def leader() -> str | None:
    holder = get_redis().get(keys.monitor_leader())
    return holder.decode() if holder else None


@pytest.mark.parametrize("path", ["/", "/failed/", "/topics/orders/", "/consumers/billing/"])
def test_every_page_says_when_no_monitor_samples_and_since_when(operator, billing, path):
    get_redis().set(keys.monitor_sampled_at(), time.time() - 300)

    html = operator.get(path).content.decode()

    assert "No monitor is sampling" in html
    assert "(5 min ago)" in html
    assert 'hx-get="/sampler/"' in html  # re-asked every 10 s, so an open page learns it too


def test_a_deployment_that_never_sampled_says_so(operator):
    assert "Nothing has sampled yet." in operator.get("/sampler/").content.decode()


def test_the_banner_is_empty_while_a_sampler_holds_the_leader_key(operator, monitor):
    assert monitor.is_leader(get_redis())

    html = operator.get("/sampler/").content.decode()

    assert 'id="sampler"' in html and "No monitor is sampling" not in html


def test_the_banner_is_for_staff_only(client, db):
    reply = client.get("/sampler/")
    assert reply.status_code == 302 and "/login/" in reply["Location"]


def test_web_process_samplers_elect_one_and_the_standby_takes_over_when_it_stops(transactional_db, orders):
    first, second = sampler.Background(), sampler.Background()
    first.start()
    try:
        holder = wait_for(leader, timeout=10, message="a leader")
        second.start()
        time.sleep(1.0)
        assert leader() == holder  # the second stands by
        sampled = float(wait_for(lambda: get_redis().get(keys.monitor_sampled_at()), timeout=10))
        first.stop()
        stopped_at = time.monotonic()
        wait_for(lambda: leader() not in (None, holder), timeout=10, message="the standby to take the lease")
        handover = time.monotonic() - stopped_at
        wait_for(lambda: float(get_redis().get(keys.monitor_sampled_at())) > sampled + 1, timeout=10)
    finally:
        first.stop()
        second.stop()

    assert handover <= 5.0  # the leader key's TTL is 3 s


def test_monitor_off_keeps_the_web_processes_from_sampling(settings):
    settings.EVENTFLOW_MONITOR = "off"

    assert sampler.start_in_web_process() is False
    assert leader() is None


def test_a_mode_that_is_not_auto_or_off_fails_loudly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.EVENTFLOW_MONITOR = "sometimes"

    with pytest.raises(ImproperlyConfigured, match="EVENTFLOW_MONITOR='sometimes'"):
        sampler.mode()
