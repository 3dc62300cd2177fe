"""The failed-events page's "Replay all matching" as a replay job: preview, rate, live progress, cancel, bounded."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from dashboard import live
from dashboard.failed_live import bulk_replays_html
from dashboard.live_pages import PAGES
from eventflow import keys, replays
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent, Replay
from eventflow.publishing import publish_batch
from eventflow.replay_worker import Feeder
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer

from .test_consumers import _messages, _open, session_headers

Status = FailedEvent.Status
REASON = "the odd-number bug is fixed"


@pytest.fixture
def worker(orders) -> Worker:
    """A worker of ``flaky``, whose 1,000 events on ``orders`` all failed once; only ``n`` odd fails now."""
    flaky = make_consumer("flaky", "tests.handlers.always_fails", orders, max_attempts=1)
    worker = Worker()
    worker.refresh()
    numbers = [2 * k for k in range(999)] + [1]  # one odd event: it fails again when replayed
    for low in range(0, 1000, 500):
        publish_batch("orders", [{"type": "order.created", "data": {"n": n}} for n in numbers[low : low + 500]])
    drain(worker, until=lambda: FailedEvent.objects.filter(consumer=flaky).count() == 1000, timeout=60)
    Consumer.objects.filter(pk=flaky.pk).update(handler="tests.handlers.fails_on_odd")
    worker.refresh()
    return worker


@pytest.fixture
def feeder(worker) -> Feeder:
    return Feeder(worker.id, lambda: list(worker.runners))


def step(worker: Worker, feeder: Feeder, until, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feeder.run_once()
        busy = worker.run_once()
        if until():
            return
        if not busy:
            time.sleep(0.002)
    raise AssertionError("the replay did not get there in time")


def start_all(operator, rate: str = "") -> Replay:
    confirm = operator.get("/failed/replay-all?consumer=flaky").content.decode()
    assert "Replay 1,000 failed events" in confirm
    html = operator.post("/failed/replay-all/confirmed", {"consumer": "flaky", "rate": rate, "reason": REASON})
    job = Replay.objects.get()
    assert f'id="bulk-replay-{job.pk}"' in html.content.decode()
    return job


def progress(job: Replay) -> replays.Progress:
    return replays.progress(replays.lookup(job.pk))


def shown(html: str, job: Replay, count: str) -> int:
    part = html.split(f'id="bulk-replay-{job.pk}"', 1)[1]
    return int(part.split(f'data-count="{count}">', 1)[1].split("<", 1)[0].replace(",", ""))


def test_it_replays_a_thousand_failed_events_as_one_job_with_live_progress_and_exact_counts(
    operator, staff_user, worker, feeder
):
    job = start_all(operator, rate="2000")

    step(worker, feeder, lambda: progress(job).handled >= 300)
    midway = bulk_replays_html(staff_user)  # what the page's socket pushes
    assert 'data-state="running"' in midway
    assert 300 <= shown(midway, job, "handled") < 1000
    step(worker, feeder, lambda: progress(job).state == Replay.State.DONE)
    drain(worker)

    final = progress(job)
    assert (final.matched, final.sent, final.handled, final.failed) == (1000, 1000, 999, 1)
    assert shown(operator.get("/failed/").content.decode(), job, "handled") == 999
    rows = FailedEvent.objects.filter(consumer__name="flaky")
    assert rows.filter(status=Status.RESOLVED).count() == 999
    again = rows.get(status=Status.FAILED_AGAIN)  # failed again during the job, and not picked up by it again
    assert (again.event["data"], again.replay_count) == ({"n": 1}, 1)
    assert len(handlers.seen("flaky")) == 999


def test_cancelling_halfway_stops_it_with_exact_counts(operator, worker, feeder):
    handlers.fix_flaky()
    job = start_all(operator, rate="1000")
    step(worker, feeder, lambda: progress(job).handled >= 300)

    html = operator.post(f"/failed/replays/{job.pk}/cancel").content.decode()
    assert 'id="failed-replays"' in html and f"Cancel replay #{job.pk}" not in html
    drain(worker)
    time.sleep(0.1)  # a schedule entry a worker claimed just before the cancel is still handled
    feeder.run_once()
    drain(worker)
    time.sleep(0.5)
    feeder.run_once()
    drain(worker)

    final = progress(job)
    assert final.state == Replay.State.CANCELLED
    assert 300 <= final.sent < 1000
    assert final.handled == final.sent and final.failed == 0
    rows = FailedEvent.objects.filter(consumer__name="flaky")
    assert rows.filter(status=Status.RESOLVED).count() == final.handled
    assert rows.filter(status=Status.FAILED).count() == 1000 - final.sent  # replayable again
    assert not rows.filter(status=Status.REPLAYING).exists()


def test_without_the_permission_it_neither_starts_nor_cancels(client, django_user_model, orders, operator):
    flaky = make_consumer("flaky", "tests.handlers.always_fails", orders)
    FailedEvent.objects.create(consumer=flaky, topic=orders, event_id="e1", event_type="t", event={}, error="x")
    job = replays.start(
        replays.plan_failed(flaky, orders, replays.Filters()), flaky, orders, user=None, reason="r", rate=None
    )
    viewer = django_user_model.objects.create_user("viewer", password="pw-12345678", is_staff=True)
    client.force_login(viewer)

    assert client.post("/failed/replay-all/confirmed", {"reason": REASON}).status_code == 403
    assert client.post(f"/failed/replays/{job.pk}/cancel").status_code == 403
    assert f"Cancel replay #{job.pk}" not in client.get("/failed/").content.decode()
    assert Replay.objects.get().state == Replay.State.PLANNED


def test_the_failed_pages_socket_gets_bulk_replay_progress_on_connect_and_as_it_moves(
    transactional_db, client, staff_user, orders
):
    flaky = make_consumer("flaky", "tests.handlers.always_fails", orders)
    FailedEvent.objects.create(consumer=flaky, topic=orders, event_id="e1", event_type="t", event={}, error="x")
    job = replays.start(
        replays.plan_failed(flaky, orders, replays.Filters()), flaky, orders, user=None, reason="r", rate=None
    )
    headers = session_headers(client, staff_user)
    bridge = live.Bridge()

    async def scenario() -> tuple[str, str]:
        socket, _ = await _open(PAGES["failed"].socket_path(), headers)
        on_connect = await socket.receive_from(timeout=5)
        await sync_to_async(get_redis().hincrby)(keys.replay_progress(orders.stream_name, job.pk), "handled", 1)
        await bridge.run_once()
        pushed = await _messages(socket)
        await socket.disconnect()
        return on_connect, pushed

    on_connect, pushed = async_to_sync(scenario)()
    assert f'id="bulk-replay-{job.pk}"' in on_connect and shown(on_connect, job, "handled") == 0
    assert 'id="failed-replays"' in pushed and 'hx-swap-oob="true"' in pushed
    assert shown(pushed, job, "handled") == 1
