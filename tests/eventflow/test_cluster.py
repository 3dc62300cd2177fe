"""EventFlow on a real Redis Cluster: three masters on loopback, Debian's redis-server.

``REDIS_URL=redis+cluster://host:port`` makes every client a ``RedisCluster``.
Each topic's keys share a hash tag, so scripts stay on one slot; a consumer
of several topics reads them one by one, since their streams live on
different slots.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from eventflow import connection, failures, keys, publish, publish_batch, topics
from eventflow.models import FailedEvent
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not (Path(REDIS_SERVER).exists() and Path(REDIS_CLI).exists()),
        reason="needs Debian's redis-server and redis-cli (apt-get install redis-server) to start a cluster",
    ),
]


def _free_ports(count: int) -> list[int]:
    """Ports free for a node and for its cluster bus (port + 10000, so below 55536)."""
    ports: list[int] = []
    for candidate in random.sample(range(20_000, 45_000), 200):
        if all(_is_free(p) for p in (candidate, candidate + 10_000)):
            ports.append(candidate)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free ports for a cluster")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory) -> Iterator[str]:
    """Three masters, no replicas, no persistence; stopped after the module."""
    folder = tmp_path_factory.mktemp("cluster")
    ports = _free_ports(3)
    servers = [
        subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(folder / f"nodes-{port}.conf"), "--cluster-node-timeout", "2000",
             "--save", "", "--appendonly", "no", "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]  # fmt: skip
    try:
        for port in ports:
            _wait(lambda p=port: _answers(p), "a cluster node to start")
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        for port in ports:
            _wait(lambda p=port: _cluster_ok(p), "the cluster to be ready")
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def _cluster_ok(port: int) -> bool:
    info = subprocess.run([REDIS_CLI, "-p", str(port), "cluster", "info"], capture_output=True, text=True).stdout
    return "cluster_state:ok" in info


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except redis.RedisError:
        return False


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def on_cluster(settings, cluster_url, key_prefix) -> Iterator[redis.cluster.RedisCluster]:
    settings.EVENTFLOW_REDIS_URL = cluster_url
    connection.reset()
    topics.clear_cache()
    client = connection.get_redis()
    assert connection.is_cluster(client)
    yield client
    connection.reset()


def test_topics_land_on_different_masters(on_cluster, orders, payments):
    slots = {on_cluster.keyslot(keys.stream(name)) for name in ("orders", "payments")}

    assert len(slots) == 2
    assert on_cluster.keyslot(keys.counters("orders")) == on_cluster.keyslot(keys.stream("orders"))
    assert on_cluster.keyslot(keys.retry_schedule("orders", "billing")) == on_cluster.keyslot(keys.stream("orders"))


def test_publish_delivery_failure_and_replay_through_a_cluster(on_cluster, orders, payments, staff_user):
    billing = make_consumer("billing", "tests.handlers.billing", orders, payments)
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=2, retry_initial=0.0)

    ids = [publish("orders", {"n": n}, type="order.created") for n in range(10)]
    batch = publish_batch("payments", [{"type": "payment.made", "id": f"pay-{n}", "data": {"n": n}} for n in range(5)])
    again = publish_batch("payments", [{"type": "payment.made", "id": "pay-0"}])
    assert again.duplicates == ["pay-0"]

    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.count() == 5)

    assert Counter(e for e, _, _ in handlers.seen("billing")) == Counter(ids + batch.ids)
    assert sorted(e for e, _, _ in handlers.seen("flaky")) == sorted(ids[0::2])
    failed = FailedEvent.objects.filter(consumer__name="flaky")
    assert sorted(row.event["data"]["n"] for row in failed) == [1, 3, 5, 7, 9]

    handlers.fix_flaky()
    sent, problems = failures.replay_many(failed, staff_user)
    assert (sent, problems) == (5, [])
    drain(worker, until=lambda: not FailedEvent.objects.exclude(status=FailedEvent.Status.RESOLVED).exists())

    assert sorted(e for e, _, _ in handlers.seen("flaky")) == sorted(ids)
    assert len(handlers.seen("billing")) == 15  # the replay went to the flaky consumer only
    assert billing.topics.count() == 2  # one consumer read both topics, slot by slot
