"""Issue 9, case 5: a handler that kills its process under ``serve`` takes down nothing else.

``serve`` runs the web server and two workers on this test's Redis prefix and
database. One consumer's handler calls ``os._exit(1)`` on a poison event (as a
crash or the OOM killer's SIGKILL would end it): only that worker process dies,
``serve`` starts it again after a backoff, the web tier answers throughout, the
other consumer handles every event, and the poison event ends as a failed event
once its deliveries pass ``max_attempts``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from eventflow.models import FailedEvent
from tests import handlers
from tests.helpers import ROOT, free_port, make_consumer, process_env, wait_for

pytestmark = pytest.mark.processes


class Prober(threading.Thread):
    """Asks for health and publishes an event every 50 ms until stopped; counts the answers."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.answers: Counter[str] = Counter()
        self.ids: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stopping.is_set():
                self.answers[f"health {client.get('/api/v1/health').status_code}"] += 1
                reply = client.post(
                    "/api/v1/topics/orders/events",
                    json={"type": "order.created", "data": {"n": len(self.ids)}},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                self.answers[f"publish {reply.status_code}"] += 1
                if reply.status_code == 202:
                    self.ids += reply.json()["ids"]
                time.sleep(0.05)


@pytest.fixture
def served(transactional_db, redis_url, key_prefix, tmp_path):
    port = free_port()
    env = process_env(redis_url, key_prefix) | {"STATIC_ROOT": str(tmp_path / "static")}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        args = [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "2", "--web-processes", "1"]
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    yield process, log, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_a_handler_that_kills_its_process_is_dead_lettered_while_web_and_other_consumers_run(
    served, orders, shop_token
):
    make_consumer("billing", "tests.handlers.billing", orders)
    make_consumer("steady", "tests.handlers.exits_on_poison", orders, max_attempts=2, ack_timeout=1.0)
    process, log, url = served
    output = lambda: log.read_text(errors="replace")  # noqa: E731
    wait_for(lambda: "EventFlow is running" in output(), timeout=90, message="serve to come up")
    web_pid = int(re.search(r"web\s+pid (\d+)", output()).group(1))
    prober = Prober(url, shop_token)
    prober.start()
    wait_for(lambda: len(prober.ids) >= 10, timeout=30, message="publishing")

    poison = httpx.post(
        f"{url}/api/v1/topics/orders/events",
        json={"type": "order.created", "data": {"poison": True}},
        headers={"Authorization": f"Bearer {shop_token}"},
    )
    assert poison.status_code == 202
    poison_id = poison.json()["ids"][0]
    poisoned_at = time.monotonic()
    failed = wait_for(
        lambda: FailedEvent.objects.filter(consumer__name="steady", event_id=poison_id).first(),
        timeout=90,
        message="the poison event to be dead-lettered",
    )
    filed_after = time.monotonic() - poisoned_at
    time.sleep(1.0)  # publishing and health go on past the last restart
    prober.stopping.set()
    prober.join(10)

    published = set(prober.ids) | {poison_id}
    wait_for(lambda: {e for e, _, _ in handlers.seen("billing")} >= published, timeout=60, message="billing")
    steady = {e for e, _, _ in handlers.seen("steady")}
    wait_for(lambda: {e for e, _, _ in handlers.seen("steady")} >= set(prober.ids), timeout=60, message="steady")
    restarts = re.findall(r"worker-\d restarted", output())
    twice = sum(n - 1 for n in Counter(e for e, _, _ in handlers.seen("billing")).values())
    print(
        f"\n[serve, os._exit handler] {len(published)} published, answers {dict(prober.answers)}; "
        f"{len(restarts)} worker restarts, web pid unchanged; billing handled every event ({twice} twice); "
        f"poison dead-lettered after 2 deliveries, {filed_after:.1f} s after it was published"
    )
    assert "abandoned after 2 deliveries" in failed.error
    assert poison_id not in steady
    assert set(prober.answers) == {"health 200", "publish 202"}, prober.answers
    assert len(restarts) >= 2  # each delivery of the poison event killed a worker
    assert "web restarted" not in output() and f"web            pid {web_pid}" in output()
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, output()
    assert f"EventFlow stopped cleanly ({len(restarts)} restarts of children that died)." in output()
