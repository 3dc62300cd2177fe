"""The "Replay history" form and the job page in Chromium, against a real server and a real worker."""

from __future__ import annotations

import re
import sys

import pytest
from playwright.sync_api import expect

from eventflow.models import Replay
from eventflow.publishing import publish_batch
from tests.e2e.conftest import Process, log_in
from tests.helpers import ROOT


@pytest.fixture
def worker_process(env, billing, shipping):
    proc = Process([sys.executable, str(ROOT / "manage.py"), "runconsumers"], env)
    yield proc
    proc.stop()


def publish(count: int) -> None:
    for low in range(0, count, 1000):
        publish_batch(
            "orders", [{"type": "order.created", "data": {"n": n}} for n in range(low, min(count, low + 1000))]
        )


def fill_form(page, *, rate: str = "") -> None:
    page.get_by_label("Topic", exact=True).select_option("orders")
    page.get_by_label("From").fill("0")
    if rate:
        page.locator("#rp-rate").fill(rate)
    page.get_by_label("Reason").fill("rebuild the invoices projection")


def test_preview_then_start_shows_live_progress_to_done(page, worker_process, orders):
    publish(300)
    log_in(page, "/consumers/billing/")

    fill_form(page)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#replay-preview")).to_contain_text("300 events match")
    page.get_by_role("button", name="Start replay of 300 events").click()

    expect(page).to_have_url(re.compile(r"/replays/\d+/$"))
    expect(page.locator("#replay-progress [data-state]")).to_have_text("done", timeout=30_000)
    expect(page.locator('[data-count="handled"]')).to_have_text("300")
    expect(page.locator("#replay-progress progress")).to_have_attribute("value", "100")
    job = Replay.objects.get()
    assert (job.consumer.name, job.reason, job.requested_by.username) == (
        "billing",
        "rebuild the invoices projection",
        "operator",
    )


def test_cancel_stops_a_throttled_replay_halfway(page, worker_process, orders):
    publish(2_000)
    log_in(page, "/consumers/billing/")

    fill_form(page, rate="50")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Start replay of 2,000 events").click()
    expect(page.locator("#replay-progress [data-state]")).to_have_text("running", timeout=20_000)
    page.get_by_role("button", name="Cancel replay").click()

    expect(page.locator("#replay-progress [data-state]")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel replay")).to_have_count(0)
    job = Replay.objects.get()
    assert job.state == Replay.State.CANCELLED and job.cancelled_by.username == "operator"
    assert job.sent < 2_000


@pytest.fixture
def flaky_worker(env, orders):
    """A worker running ``flaky``, which fails every event at once (one attempt)."""
    from tests.helpers import make_consumer

    make_consumer("flaky", "tests.handlers.always_fails", orders, max_attempts=1)
    proc = Process([sys.executable, str(ROOT / "manage.py"), "runconsumers"], env)
    yield proc
    proc.stop()


def test_replay_all_matching_runs_as_a_job_whose_progress_the_failed_page_shows_live(
    page, flaky_worker, monitor_process, orders
):
    import time

    from eventflow.models import FailedEvent

    publish(300)
    deadline = time.monotonic() + 60
    while FailedEvent.objects.filter(consumer__name="flaky").count() < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    log_in(page, "/failed/?consumer=flaky")

    page.get_by_role("button", name="Replay all matching…").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("Replay 300 failed events")
    page.locator("#bulk-rate").fill("100")
    page.locator("#bulk-reason").fill("retry after the outage")
    page.get_by_role("button", name="Replay 300 events").click()

    job = page.locator("#failed-replays .bulk-replay")
    expect(job).to_have_attribute("data-state", "running", timeout=20_000)  # pushed by the monitor
    expect(job).to_have_attribute("data-state", "done", timeout=30_000)
    expect(job.locator('[data-count="failed"]')).to_have_text("300")  # failed again, each once
    expect(job.locator("progress")).to_have_attribute("value", "100")
    assert Replay.objects.get().rate == 100.0
