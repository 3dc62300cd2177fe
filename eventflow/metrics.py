"""Prometheus metrics: the monitor's snapshot in the text exposition format.

A scrape costs one Redis ``GET``: the snapshot that the monitor leader stores
every second (``eventflow.monitor``). It never samples Redis itself, so a
thousand topics cost the scraper what they cost the monitor once. Counters are
Redis's own running totals (the per-topic counter hashes), so they stay
monotonic when a monitor restarts or another one takes the lead.

When no monitor has sampled within ``EVENTFLOW_MONITOR_SNAPSHOT_TTL``, only
``eventflow_redis_up`` and ``eventflow_monitor_last_sample_age_seconds``
(``+Inf``) are exported: nothing claims to be OK that nobody looked at.

Who may scrape (``allowed``): a client address on ``EVENTFLOW_METRICS_ALLOW``
(addresses or networks; default loopback only) without credentials, or any
client with ``Authorization: Bearer <EVENTFLOW_METRICS_TOKEN>``. A presented
token that is wrong is refused even from an allowed address, so a
misconfigured scraper shows up as a 403 instead of passing by luck. Everyone
else gets 403.

Mount ``metrics_view`` wherever the project wants it (this project: ``/metrics``).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterable, Iterator

import orjson
import redis
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from . import conf, drift, health, keys
from .connection import get_redis
from .snapshot import Snapshot

# Exported counter -> (help, the Redis counter fields behind it, summed). "filtered" reads the
# type-filter's "skipped" field and a "filtered" field if a later release counts one separately.
LANE_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "handled": ("Deliveries the handler acknowledged.", ("acked",)),
    "filtered": ("Deliveries acknowledged without calling the handler (event-type filter).", ("skipped", "filtered")),
    "failed": ("Handler attempts that failed; each one is retried or dead-lettered.", ("errors",)),
    "dead_lettered": ("Events given up on after their last attempt (failed events recorded).", ("dead",)),
    "trimmed": ("Events retention cut from the stream before this consumer acknowledged them.", ("trimmed",)),
}

# Gauge over snapshot["lanes"] -> (help, lane field).
LANE_GAUGES: dict[str, tuple[str, str]] = {
    "lag": ("Events in the topic stream not yet delivered to the consumer group.", "lag"),
    "pending": ("Events delivered to a worker and not yet acknowledged.", "pending"),
    "retrying": ("Failed attempts waiting for their retry time.", "retrying"),
    "oldest_pending_seconds": ("Seconds the oldest pending event has been held by a worker.", "oldest_pending"),
}


# --- who may scrape ------------------------------------------------------------------


def allowed(request: HttpRequest) -> bool:
    """Return True if ``request`` may read the metrics (see the module docstring for the rule)."""
    presented = _bearer(request)
    if presented is not None:
        token = conf.get("METRICS_TOKEN") or ""
        return bool(token) and hmac.compare_digest(presented.encode(), token.encode())
    return address_allowed(request.META.get("REMOTE_ADDR") or "")


def address_allowed(address: str) -> bool:
    """True if ``address`` (an IPv4/IPv6 literal) is inside one of the allowed networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # no address (a Unix socket) or garbage: not on any list
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener reports 127.0.0.1 as ::ffff:127.0.0.1
    return any(ip in network for network in allowed_networks())


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``EVENTFLOW_METRICS_ALLOW`` parsed; raise ImproperlyConfigured on an entry that is not an address or network."""
    networks = []
    for entry in conf.get("METRICS_ALLOW"):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"EVENTFLOW_METRICS_ALLOW: {entry!r} is not an address or network") from exc
    return networks


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


# --- the exposition ----------------------------------------------------------------------


def read_snapshot() -> tuple[Snapshot | None, bool]:
    """The stored snapshot (None when no monitor sampled within its TTL) and whether Redis answered.

    Unlike ``monitor.load_snapshot`` this never samples Redis itself: a scrape
    must stay one round trip however large the flow is.
    """
    try:
        raw = get_redis().get(keys.monitor_snapshot())
    except redis.RedisError:
        return None, False
    return (orjson.loads(raw) if raw else None), True


def render(now: float | None = None) -> bytes:
    """The metrics in the Prometheus text format (version 0.0.4), from the stored snapshot."""
    snapshot, redis_up = read_snapshot()
    return exposition(SnapshotCollector(snapshot, redis_up, time.time() if now is None else now).collect())


def exposition(families: Iterable[Metric]) -> bytes:
    """Counter and gauge ``families`` in the text format: byte for byte what ``generate_latest`` writes.

    At 20,000 series ``generate_latest`` spends most of a scrape checking and
    escaping every label name again; here the names are this module's own
    (legacy-safe, no escaping), each labels dict (one per lane, shared by its
    families) is written once, and each distinct value is formatted once.
    """
    families = list(families)  # every labels dict stays alive, so ids below are not reused
    labels_text: dict[int, str] = {}
    values_text: dict[float, str] = {}
    out: list[str] = []
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        documentation = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {documentation}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = labels_text.get(id(sample.labels))
            if labels is None:
                labels = labels_text[id(sample.labels)] = _label_text(sample.labels)
            value = values_text.get(sample.value)
            if value is None:
                value = values_text[sample.value] = floatToGoString(sample.value)
            out.append(f"{sample.name}{labels} {value}\n")
    return "".join(out).encode()


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: 200 with the exposition, or 403 for a client that may not scrape."""
    if not allowed(request):
        body = "403 Forbidden: only allowed addresses (EVENTFLOW_METRICS_ALLOW) or a bearer token "
        body += "(EVENTFLOW_METRICS_TOKEN) may read /metrics\n"
        return HttpResponse(body, status=403, content_type="text/plain; charset=utf-8")
    response = HttpResponse(render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)  # every name is legacy-safe: no escaping
    response["Cache-Control"] = "no-store"
    return response


class SnapshotCollector:
    """A prometheus_client collector over one monitor snapshot (or none)."""

    def __init__(self, snapshot: Snapshot | None, redis_up: bool, now: float) -> None:
        self.snapshot = snapshot
        self.redis_up = redis_up
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield _gauge("eventflow_redis_up", "1 if the web tier read the monitor snapshot from Redis.", self.redis_up)
        age = max(0.0, self.now - float(self.snapshot["at"])) if self.snapshot else float("inf")
        yield _gauge("eventflow_monitor_last_sample_age_seconds", "Seconds since the monitor's last sample.", age)
        if self.snapshot is None:
            return
        yield from topic_metrics(self.snapshot)
        yield from lane_metrics(self.snapshot)
        yield from consumer_metrics(self.snapshot)
        yield drift_metric(self.snapshot)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


class _Series:
    """One metric family being filled, sample by sample.

    Faster than ``add_metric`` at 20,000 series: the samples are appended
    directly, and one labels dict is shared by all of a lane's families.
    """

    __slots__ = ("metric", "_name", "_append")

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self._name = f"{metric.name}_total" if metric.type == "counter" else metric.name
        self._append = metric.samples.append

    def add(self, labels: dict[str, str], value: float) -> None:
        self._append(Sample(self._name, labels, value))


def _counter(name: str, documentation: str) -> _Series:
    return _Series(CounterMetricFamily(name, documentation))


def _gauges(name: str, documentation: str) -> _Series:
    return _Series(GaugeMetricFamily(name, documentation))


def topic_metrics(snapshot: Snapshot) -> Iterator[Metric]:
    """Events accepted per topic (per producer too would add a series per producer and topic to every scrape)."""
    counters = snapshot.get("counters") or {}
    published = _counter("eventflow_events_published", "Events accepted into the topic.")
    for topic in snapshot["topics"]:
        name = topic["name"]
        published.add({"topic": name}, counters.get(name, {}).get("published", 0))
    yield published.metric


def lane_metrics(snapshot: Snapshot) -> Iterator[Metric]:
    """Per consumer and topic: the outcome counters and the backlog gauges."""
    totals = _lane_totals(snapshot.get("counters") or {})
    counters = [(_counter(f"eventflow_consumer_{n}_total", h), sources) for n, (h, sources) in LANE_COUNTERS.items()]
    retries = _counter("eventflow_consumer_retries", "Failed attempts scheduled to run again (failed - dead_lettered).")
    gauges = [(_gauges(f"eventflow_consumer_{n}", h), field) for n, (h, field) in LANE_GAUGES.items()]
    for lane in snapshot.get("lanes") or []:
        labels = {"consumer": lane["consumer"], "topic": lane["topic"]}
        fields = totals.get((lane["topic"], lane["consumer"]), {})
        for series, sources in counters:
            series.add(labels, sum(fields.get(source, 0) for source in sources))
        # Every failed attempt is either scheduled again or dead-lettered (eventflow.worker), so this is exact.
        retries.add(labels, max(0, fields.get("errors", 0) - fields.get("dead", 0)))
        for series, field in gauges:
            series.add(labels, lane.get(field, 0))
    yield from (series.metric for series, _ in counters)
    yield retries.metric
    yield from (series.metric for series, _ in gauges)


def _lane_totals(counters: dict[str, dict[str, int]]) -> dict[tuple[str, str], dict[str, int]]:
    """Regroup the topics' counter hashes (``"acked:billing": 3``) by (topic, consumer)."""
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for topic, fields in counters.items():
        for key, value in fields.items():
            field, sep, consumer = key.partition(":")
            if sep:
                totals.setdefault((topic, consumer), {})[field] = value
    return totals


def consumer_metrics(snapshot: Snapshot) -> Iterator[Metric]:
    """Per consumer: health (one series per status), live workers, open failed events, paused."""
    status = _gauges("eventflow_consumer_health", "1 for the consumer's current health status, 0 for the others.")
    workers = _gauges("eventflow_workers_online", "Live workers running the consumer.")
    failed = _gauges("eventflow_failed_events_open", "Failed events waiting for replay or discard.")
    paused = _gauges("eventflow_consumer_paused", "1 if an operator paused the consumer.")
    for consumer in snapshot["consumers"]:
        name, current = consumer["name"], consumer["status"]
        for each in _statuses(current):
            status.add({"consumer": name, "status": each}, 1 if each == current else 0)
        labels = {"consumer": name}
        workers.add(labels, consumer.get("workers", 0))
        failed.add(labels, consumer.get("failed", 0))
        paused.add(labels, 1 if consumer.get("paused") else 0)
    yield from (status.metric, workers.metric, failed.metric, paused.metric)


def drift_metric(snapshot: Snapshot) -> Metric:
    """Declared-versus-observed findings per kind (``eventflow.drift``), 0 for the kinds with none."""
    series = _gauges("eventflow_drift_findings", "Findings where the running system and its configuration disagree.")
    counts = dict.fromkeys(drift.KINDS, 0)
    for finding in snapshot.get("drift") or []:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    for kind, count in counts.items():
        series.add({"kind": kind}, count)
    return series.metric


def _statuses(current: str) -> Iterable[str]:
    known = [str(s) for s in health.Status]
    return known if current in known else [*known, current]
