"""Faults 2 and 3: the broker's Redis dies under load, with and without persistence.

Each scenario starts a Redis of its own on a free loopback port (append-only
with ``everysec``, or no persistence at all), points a real web server and
real workers at it, and SIGKILLs it while a producer keeps publishing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.reliability.conftest import build_flow, use_broker
from tests.reliability.harness import Ledger, Subscriber, drained, measure, new_events, records, sized, wait

pytestmark = [pytest.mark.processes]

SUBSCRIBERS = [Subscriber("billing", "once", ("orders",)), Subscriber("shipping", "effect", ("orders",))]
RESUME_WITHIN = 5.0


@dataclass
class Answer:
    at: float
    status: int | None  # None: no answer (reset, timeout)
    retry_after: str | None
    json: bool


@dataclass
class Producer:
    """Publishes batches of 10 every 50 ms until stopped, noting every answer."""

    url: str
    token: str
    ledger: Ledger = field(default_factory=Ledger)
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            while not self.stop.is_set():
                reply = self.ledger.publish_http(client, "orders", new_events(10))
                self.answers.append(_answer(reply))
                self.stop.wait(0.05)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.at < end]


def _answer(reply: httpx.Response | None) -> Answer:
    if reply is None:
        return Answer(time.time(), None, None, False)
    is_json = reply.headers.get("content-type", "").startswith("application/json")
    return Answer(time.time(), reply.status_code, reply.headers.get("retry-after"), is_json)


def first_after(times: list[float], moment: float) -> float:
    later = [t for t in times if t > moment]
    return (min(later) - moment) if later else float("inf")


def test_redis_killed_with_append_only_everysec_loses_no_acknowledged_event(scenario, settings, fleet, own_redis):
    server = own_redis(appendonly=True, fsync="everysec")
    use_broker(settings, server.url)
    token = build_flow(SUBSCRIBERS, ack_timeout=2.0)
    processes = fleet(server.url)
    url = processes.web()
    processes.worker(), processes.worker()
    producer = Producer(url, token)
    thread = producer.start()
    time.sleep(1.5)

    server.kill()
    killed = time.time()
    time.sleep(sized(2.5, 10))
    down_health = httpx.get(url + "/api/v1/health", timeout=5)
    restarting = time.time()
    server.start()
    restarted = time.time()
    time.sleep(sized(4, 15))
    producer.stop.set()
    thread.join(15)
    wait(lambda: drained(producer.ledger, SUBSCRIBERS, scenario), sized(60, 300), "the drain after the restart")

    while_down = producer.between(killed + 0.1, restarting)
    statuses = {a.status for a in while_down}
    publish_resumed = first_after([a.at for a in producer.answers if a.status == 202], restarted)
    consume_resumed = first_after([r.at for r in records("deliveries")], restarted)
    report = measure(scenario, producer.ledger, SUBSCRIBERS, "Redis SIGKILL, append-only everysec")
    report.timings = {
        "down": restarting - killed,
        "restart took": restarted - restarting,
        "publish resumed": publish_resumed,
        "consume resumed": consume_resumed,
    }
    report.extra = {"answers while down": dict(producer.ledger.statuses), "health while down": down_health.status_code}
    report.show().assert_sound()
    assert while_down and statuses == {503}, report.render()
    assert all(a.retry_after and a.json for a in while_down)
    assert 500 not in producer.ledger.statuses
    assert down_health.status_code == 503 and down_health.json()["redis"]["reachable"] is False
    assert publish_resumed <= RESUME_WITHIN and consume_resumed <= RESUME_WITHIN, report.render()


def test_redis_restarted_without_persistence_gets_its_groups_back_and_no_crash_loop(
    scenario, settings, fleet, own_redis
):
    server = own_redis(appendonly=False)
    use_broker(settings, server.url)
    token = build_flow(SUBSCRIBERS, ack_timeout=2.0)
    processes = fleet(server.url)
    url = processes.web()
    workers = [processes.worker(), processes.worker()]
    before, after = Ledger(), Ledger()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        before.publish_http(client, "orders", new_events(50))
        wait(lambda: drained(before, SUBSCRIBERS, scenario), 30, "the first events to be handled")

        server.kill()
        time.sleep(2)  # long enough for the workers to back off
        server.start()
        restarted = time.time()
        # Straight away: the workers have not yet noticed that their groups are gone.
        for _ in range(5):
            after.publish_http(client, "orders", new_events(20))
        health = client.get("/api/v1/health").json()

    wait(lambda: drained(after, SUBSCRIBERS, scenario), 30, "the events published after the restart")
    report = measure(scenario, after, SUBSCRIBERS, "Redis without persistence restarted")
    consume_resumed = first_after([r.at for r in records("deliveries")], restarted)
    report.timings = {"consume resumed": consume_resumed}
    report.extra = {"durability": health["redis"]["durability"], "workers alive": [w.poll() is None for w in workers]}
    report.show().assert_sound()
    assert after.ids("ok") and not after.ids("failed")
    assert health["redis"]["durability"] == "none"
    assert all(w.poll() is None for w in workers) and len(processes.workers) == 2  # no crash, no restart
    assert consume_resumed <= RESUME_WITHIN
