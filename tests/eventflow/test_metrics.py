"""GET /metrics: the monitor's snapshot as Prometheus text, checked with Prometheus's own parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventflow import connection, delivery, keys, publish
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.monitor import Monitor
from eventflow.worker import Worker
from tests.helpers import drain, free_port, make_consumer

OUTSIDER = "203.0.113.9"  # TEST-NET-3: never on an allow-list by accident


def scrape(client, **extra) -> dict[tuple[str, frozenset], float]:
    """GET /metrics and parse it: {(sample name, labels): value}."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def lane(metric: str, consumer: str, topic: str = "orders") -> tuple[str, frozenset]:
    return (metric, frozenset({"consumer": consumer, "topic": topic}.items()))


def per_consumer(metric: str, consumer: str, **labels: str) -> tuple[str, frozenset]:
    return (metric, frozenset({"consumer": consumer, **labels}.items()))


@pytest.fixture
def traffic(orders, payments, shop, billing):
    """Known traffic: 6 events on orders (billing takes all; flaky fails the odd ones twice and
    filters the refund), 2 events on payments that ledger has no worker for."""
    make_consumer(
        "flaky", "tests.handlers.fails_on_odd", orders, max_attempts=2, retry_initial=0.01, event_types="order.*"
    )
    make_consumer("ledger", "tests.handlers.billing", payments)
    delivery.ensure_group(get_redis(), "payments", "ledger")
    for n in range(5):
        publish("orders", {"n": n}, type="order.created", source="shop")
    publish("orders", {"n": 6}, type="refund.created", source="shop")
    publish("payments", {"n": 1}, type="payment.taken")
    publish("payments", {"n": 2}, type="payment.taken")
    worker = Worker(["billing", "flaky"])
    drain(worker, until=lambda: FailedEvent.objects.count() == 2)
    worker.beat()
    Monitor(flow_refresh=0.0).step()


def test_it_exports_exact_counts_for_known_traffic(client, traffic):
    metrics = scrape(client)

    assert metrics[("eventflow_events_published_total", frozenset({"topic": "orders"}.items()))] == 6
    assert metrics[("eventflow_events_published_total", frozenset({"topic": "payments"}.items()))] == 2
    assert metrics[lane("eventflow_consumer_handled_total", "billing")] == 6
    flaky = {
        name: metrics[lane(f"eventflow_consumer_{name}_total", "flaky")]
        for name in ("handled", "filtered", "failed", "retries", "dead_lettered")
    }
    # n=0,2,4 handled; the refund filtered; n=1,3 fail, are retried once, fail again, are dead-lettered.
    assert flaky == {"handled": 3, "filtered": 1, "failed": 4, "retries": 2, "dead_lettered": 2}
    assert metrics[per_consumer("eventflow_failed_events_open", "flaky")] == 2
    assert metrics[per_consumer("eventflow_failed_events_open", "billing")] == 0


def test_it_exports_backlogs_workers_and_one_health_status_per_consumer(client, traffic):
    metrics = scrape(client)

    assert metrics[lane("eventflow_consumer_lag", "ledger", "payments")] == 2
    assert metrics[lane("eventflow_consumer_pending", "ledger", "payments")] == 0
    assert metrics[lane("eventflow_consumer_lag", "billing")] == 0
    assert metrics[lane("eventflow_consumer_oldest_pending_seconds", "billing")] == 0
    assert metrics[per_consumer("eventflow_workers_online", "billing")] == 1
    assert metrics[per_consumer("eventflow_workers_online", "ledger")] == 0
    health = {
        labels["status"]: value
        for (name, frozen), value in metrics.items()
        if name == "eventflow_consumer_health" and (labels := dict(frozen))["consumer"] == "ledger"
    }
    assert health == {"OK": 0, "LAGGING": 0, "WARNING": 0, "STALLED": 0, "STOPPED": 1, "FAILING": 0}
    assert metrics[("eventflow_redis_up", frozenset())] == 1
    assert 0 <= metrics[("eventflow_monitor_last_sample_age_seconds", frozenset())] < 10
    drift = {dict(labels)["kind"]: v for (name, labels), v in metrics.items() if name == "eventflow_drift_findings"}
    assert drift == {"silent_producer": 0, "undeclared_group": 0, "undeclared_stream": 0, "no_worker": 1}  # ledger


def test_it_reports_how_long_the_oldest_pending_event_waits(client, orders, billing):
    delivery.ensure_group(get_redis(), "orders", "billing")
    publish("orders", {"n": 1}, type="order.created")
    delivery.read_new(get_redis(), "billing", "w1", ("orders",), 1, None)  # taken, never acked
    Monitor(flow_refresh=0.0).step()

    metrics = scrape(client)

    assert metrics[lane("eventflow_consumer_pending", "billing")] == 1
    assert metrics[lane("eventflow_consumer_oldest_pending_seconds", "billing")] >= 0


def test_counters_stay_monotonic_across_a_monitor_restart(client, traffic):
    before = scrape(client)[lane("eventflow_consumer_handled_total", "billing")]
    publish("orders", {"n": 8}, type="order.created")
    drain(Worker(["billing"]))
    Monitor(flow_refresh=0.0).step()  # a new monitor: no memory of the previous one

    after = scrape(client)

    assert after[lane("eventflow_consumer_handled_total", "billing")] == before + 1
    assert after[("eventflow_events_published_total", frozenset({"topic": "orders"}.items()))] == 7


def test_without_a_current_snapshot_it_claims_nothing_but_redis_and_the_sample_age(client, traffic):
    get_redis().delete(keys.monitor_snapshot())

    metrics = scrape(client)

    assert metrics == {
        ("eventflow_redis_up", frozenset()): 1,
        ("eventflow_monitor_last_sample_age_seconds", frozenset()): math.inf,
    }


def test_redis_down_shows_as_redis_up_zero(client, settings, db):
    settings.EVENTFLOW_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    connection.reset()

    metrics = scrape(client)

    assert metrics[("eventflow_redis_up", frozenset())] == 0
    assert metrics[("eventflow_monitor_last_sample_age_seconds", frozenset())] == math.inf


# --- who may scrape --------------------------------------------------------------------


def test_an_address_off_the_allow_list_gets_403(client, traffic):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDER)

    assert response.status_code == 403
    assert b"EVENTFLOW_METRICS_TOKEN" in response.content
    assert b"eventflow_" not in response.content


def test_a_wrong_token_gets_403_from_anywhere(client, settings, traffic):
    settings.EVENTFLOW_METRICS_TOKEN = "s3cret-scrape-token"
    wrong = {"Authorization": "Bearer s3cret-scrape-tokeX"}

    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER, headers=wrong).status_code == 403
    assert client.get("/metrics", headers=wrong).status_code == 403  # loopback, but a wrong token is refused
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER, headers={"Authorization": "Basic xyz"}).status_code == 403


def test_no_token_is_accepted_when_none_is_configured(client, settings, traffic):
    settings.EVENTFLOW_METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER, headers={"Authorization": "Bearer "}).status_code == 403


def test_the_right_token_scrapes_from_any_address(client, settings, traffic):
    settings.EVENTFLOW_METRICS_TOKEN = "s3cret-scrape-token"

    metrics = scrape(client, REMOTE_ADDR=OUTSIDER, headers={"Authorization": "Bearer s3cret-scrape-token"})

    assert metrics[lane("eventflow_consumer_handled_total", "billing")] == 6


def test_the_allow_list_takes_networks_and_replaces_loopback(client, settings, traffic):
    settings.EVENTFLOW_METRICS_ALLOW = ["10.0.0.0/8", "2001:db8::/32"]

    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_dual_stack_listener_reports_loopback_as_mapped_ipv6(client, traffic):
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


def test_a_nonsense_allow_list_entry_fails_the_system_check(settings):
    from eventflow.checks import check_settings

    settings.EVENTFLOW_METRICS_ALLOW = ["127.0.0.1", "localhost"]

    problems = [p for p in check_settings(None) if p.id == "eventflow.E015"]

    assert [p.msg for p in problems] == ["EVENTFLOW_METRICS_ALLOW: 'localhost' is not an address or network"]


# --- the writer: what prometheus_client would write, faster ------------------------------


def test_the_exposition_is_what_prometheus_client_writes_for_known_traffic(client, traffic):
    from prometheus_client import CollectorRegistry, generate_latest

    from eventflow.metrics import SnapshotCollector, exposition, read_snapshot

    snapshot, redis_up = read_snapshot()
    collector = SnapshotCollector(snapshot, redis_up, now=snapshot["at"] + 1.5)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    assert exposition(collector.collect()) == generate_latest(registry)
    assert b'eventflow_consumer_handled_total{consumer="billing",topic="orders"} 6.0\n' in generate_latest(registry)


def test_the_exposition_escapes_label_values_and_formats_values_as_prometheus_client_does():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from eventflow.metrics import exposition

    def families():
        gauge = GaugeMetricFamily("eventflow_x", 'help with a \\ and\na "newline"', labels=["topic", "consumer"])
        for n, value in enumerate([0, 0.5, 12_345_678, float("inf"), float("-inf"), 1e-7]):
            gauge.add_metric([f'o"r\\d\ne{n}', "bïlling"], value)
        counter = CounterMetricFamily("eventflow_y", "a counter", labels=["consumer"])
        counter.add_metric(["a"], 3)
        return [gauge, counter, GaugeMetricFamily("eventflow_z", "no labels", value=2)]

    class Fixed:
        def collect(self):
            return families()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())

    assert exposition(families()) == generate_latest(registry)
