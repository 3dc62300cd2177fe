"""Webhook consumers: real workers POST events to a real HTTP endpoint in the test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.urls import reverse

from eventflow import failures, keys, publish
from eventflow.models import Consumer, FailedEvent
from eventflow.webhooks import webhook_id
from eventflow.worker import Worker
from tests.eventflow.test_admin import consumer_form, fast_passwords  # noqa: F401 - fast_passwords is autouse
from tests.helpers import drain, free_port, make_consumer, wait_for

SECRET = "a-long-enough-shared-secret"
WHSEC = "whsec_" + base64.b64encode(b"twenty-four random bytes").decode()


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    client_port: int


@dataclass
class Endpoint:
    """A webhook receiver on 127.0.0.1: it records every request and answers as told."""

    url: str = ""
    status: int = 204
    answer: bytes = b""
    answer_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)


class _Receive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

    def do_POST(self) -> None:
        endpoint: Endpoint = self.server.endpoint  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        endpoint.requests.append(Request(self.path, headers, body, self.client_address[1]))
        time.sleep(endpoint.delay)
        try:
            self.send_response(endpoint.status)
            for name, value in endpoint.answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(endpoint.answer)))
            self.end_headers()
            self.wfile.write(endpoint.answer)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the worker stopped waiting (a timeout under test)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receive)
    server.daemon_threads = True
    server.endpoint = Endpoint(url=f"http://127.0.0.1:{server.server_port}/hooks/orders")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.endpoint  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def ledger(url: str, *topics, **options) -> Consumer:
    """A webhook consumer named ``ledger`` (fast retries, so tests stay quick)."""
    options = {"retry_initial": 0.05, **options}
    return make_consumer("ledger", url, *topics, kind=Consumer.Kind.WEBHOOK, **options)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, as README.md shows it."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def pending(redis_client, consumer: str = "ledger", topic: str = "orders") -> int:
    return redis_client.xpending(keys.stream(topic), keys.group(consumer))["pending"]


def failed_row() -> FailedEvent:
    drain(Worker(), until=lambda: FailedEvent.objects.exists())
    return FailedEvent.objects.get()


# --- delivery --------------------------------------------------------------------------------


def test_an_event_is_posted_once_as_a_cloudevent_and_acked(orders, endpoint, redis_client):
    ledger(endpoint.url, orders)
    event_id = publish("orders", {"order": 42}, type="order.created", key="customer-7")

    drain(Worker(), until=lambda: endpoint.requests)

    [request] = endpoint.requests
    [(_, fields)] = redis_client.xrange(keys.stream("orders"))
    assert orjson.loads(request.body) == orjson.loads(fields[b"e"])  # the envelope, as stored
    assert orjson.loads(request.body)["data"] == {"order": 42}
    assert request.path == "/hooks/orders"
    assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert request.headers["eventflow-consumer"] == "ledger"
    assert request.headers["eventflow-attempt"] == "1"
    assert request.headers["webhook-id"] == webhook_id("ledger", "python", event_id)
    assert "webhook-signature" not in request.headers
    assert pending(redis_client) == 0
    assert not redis_client.zcard(keys.retry_schedule("orders", "ledger"))
    assert not FailedEvent.objects.exists()


def test_an_event_id_no_header_can_carry_reaches_webhook_id_as_a_header_safe_hash(orders, endpoint):
    ledger(endpoint.url, orders, webhook_secret=SECRET)
    publish("orders", {}, type="order.created", id="bestellung 7/ü")

    drain(Worker(), until=lambda: endpoint.requests)

    [request] = endpoint.requests
    assert re.fullmatch(r"msg_[a-z2-7]{32}", request.headers["webhook-id"])
    assert request.headers["webhook-id"] == webhook_id("ledger", "python", "bestellung 7/ü")
    assert orjson.loads(request.body)["id"] == "bestellung 7/ü"
    assert verify(SECRET, request.headers, request.body)


def test_the_same_event_id_from_two_sources_gets_two_webhook_ids_so_a_deduping_receiver_keeps_both(
    orders, endpoint
):
    ledger(endpoint.url, orders)
    publish("orders", {"from": "shop"}, type="order.created", id="1001", source="shop")
    publish("orders", {"from": "pos"}, type="order.created", id="1001", source="pos")

    drain(Worker(), until=lambda: len(endpoint.requests) == 2)

    received = {r.headers["webhook-id"]: orjson.loads(r.body)["data"] for r in endpoint.requests}
    assert sorted(received.values(), key=str) == [{"from": "pos"}, {"from": "shop"}]


@pytest.mark.parametrize("secret", [SECRET, WHSEC], ids=["plain-secret", "whsec-secret"])
def test_a_consumer_with_a_secret_signs_each_request_so_the_receiver_can_verify_it(orders, endpoint, secret):
    ledger(endpoint.url, orders, webhook_secret=secret)
    publish("orders", {"order": 42}, type="order.created")

    drain(Worker(), until=lambda: endpoint.requests)

    [request] = endpoint.requests
    assert request.headers["webhook-signature"].startswith("v1,")
    assert verify(secret, request.headers, request.body)
    assert not verify("some-other-long-secret", request.headers, request.body)
    assert not verify(secret, request.headers, request.body.replace(b"42", b"43"))


def test_an_endpoint_answering_500_is_retried_then_the_event_becomes_one_failed_event(orders, endpoint, redis_client):
    endpoint.status, endpoint.answer = 500, b"<h1>Oops</h1>\n  the ledger database is down"
    ledger(endpoint.url, orders, max_attempts=3)
    event_id = publish("orders", {"order": 42}, type="order.created")

    row = failed_row()

    assert row.error == f"HTTP 500 from {endpoint.url}: <h1>Oops</h1> the ledger database is down"
    assert (row.event_id, row.attempts, row.status) == (event_id, 3, FailedEvent.Status.FAILED)
    assert row.traceback.startswith("HTTP 500 Internal Server Error\n")  # the answer, in place of a traceback
    assert [r.headers["eventflow-attempt"] for r in endpoint.requests] == ["1", "2", "3"]
    assert {r.headers["webhook-id"] for r in endpoint.requests} == {webhook_id("ledger", "python", event_id)}
    assert pending(redis_client) == 0


def test_an_endpoint_slower_than_the_timeout_is_a_failed_attempt(orders, endpoint):
    endpoint.delay = 1.5
    ledger(endpoint.url, orders, max_attempts=1, ack_timeout=1.0)  # so the timeout is 0.8 s
    publish("orders", {}, type="order.created")
    started = time.monotonic()

    row = failed_row()

    assert row.error == f"timeout after 0.8 s waiting for {endpoint.url}"
    assert time.monotonic() - started < 1.4  # it stopped waiting before the endpoint answered


def test_a_refused_connection_is_a_failed_attempt(orders):
    url = f"http://127.0.0.1:{free_port()}/hooks/orders"  # nothing listens there
    ledger(url, orders, max_attempts=1)
    publish("orders", {}, type="order.created")

    row = failed_row()

    assert row.error.startswith(f"cannot connect to {url}: ")


def test_a_redirect_is_not_followed_but_is_a_failed_attempt(orders, endpoint):
    endpoint.status, endpoint.answer_headers = 301, {"Location": "https://elsewhere.example/hooks"}
    ledger(endpoint.url, orders, max_attempts=1)
    publish("orders", {}, type="order.created")

    row = failed_row()

    assert row.error == (
        f"HTTP 301 from {endpoint.url}: redirects are not followed (Location: https://elsewhere.example/hooks)"
    )
    assert len(endpoint.requests) == 1


def test_a_replay_after_the_endpoint_recovers_delivers_the_event_and_resolves_the_row(orders, endpoint, staff_user):
    endpoint.status = 503
    ledger(endpoint.url, orders, max_attempts=1)
    event_id = publish("orders", {}, type="order.created")
    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.exists())
    assert FailedEvent.objects.get().error == f"HTTP 503 from {endpoint.url}"

    endpoint.status = 200
    failures.replay(FailedEvent.objects.get(), staff_user)
    drain(worker, until=lambda: FailedEvent.objects.get().status == FailedEvent.Status.RESOLVED)

    assert [r.headers["webhook-id"] for r in endpoint.requests] == [webhook_id("ledger", "python", event_id)] * 2
    assert endpoint.requests[-1].headers["eventflow-attempt"] == "1"  # a replay starts counting again


def test_a_worker_keeps_its_connection_alive_from_one_event_to_the_next(orders, endpoint):
    ledger(endpoint.url, orders)
    for n in range(5):
        publish("orders", {"n": n}, type="order.created")

    drain(Worker(), until=lambda: len(endpoint.requests) == 5)

    assert len({r.client_port for r in endpoint.requests}) == 1


def test_sync_mode_posts_to_a_webhook_at_publish(orders, endpoint, settings):
    settings.EVENTFLOW_SYNC = True
    ledger(endpoint.url, orders)

    event_id = publish("orders", {}, type="order.created")

    assert [r.headers["webhook-id"] for r in endpoint.requests] == [webhook_id("ledger", "python", event_id)]


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_posts_every_event_and_leaves_none_pending(orders, endpoint, spawn_worker, redis_client):
    ledger(endpoint.url, orders)
    spawn_worker("ledger")
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(3)]

    wait_for(lambda: len(endpoint.requests) == 3, message="three POSTs")
    wait_for(lambda: pending(redis_client) == 0, message="the events to be acked")
    assert sorted(r.headers["webhook-id"] for r in endpoint.requests) == sorted(
        webhook_id("ledger", "python", i) for i in ids
    )


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler, message",
    [
        ("shop.handlers.bill", "absolute http:// or https:// URL"),
        ("/hooks/orders", "absolute http:// or https:// URL"),
        ("ftp://shop.example/hooks", "absolute http:// or https:// URL"),
        ("https://", "absolute http:// or https:// URL"),
        ("https://shop.example:99999/hooks", "absolute http:// or https:// URL"),
        ("https://user:password@shop.example/hooks", "Leave credentials out of the URL"),
    ],
    ids=["dotted-path", "relative", "ftp", "no-host", "bad-port", "credentials"],
)
def test_the_admin_refuses_a_webhook_consumer_without_a_usable_url(admin_client, orders, handler, message):
    response = admin_client.post(
        reverse("admin:eventflow_consumer_add"), consumer_form(kind="webhook", handler=handler, topics=[orders.pk])
    )

    assert message in " ".join(response.context["adminform"].form.errors["handler"])
    assert not Consumer.objects.filter(name="audit").exists()


def test_the_admin_refuses_a_url_for_a_python_consumer(admin_client, orders):
    response = admin_client.post(
        reverse("admin:eventflow_consumer_add"),
        consumer_form(kind="python", handler="https://shop.example/hooks", topics=[orders.pk]),
    )

    assert "choose the webhook kind" in " ".join(response.context["adminform"].form.errors["handler"])


@pytest.mark.parametrize(
    "kind, secret, message",
    [
        ("webhook", "short", "at least 16 characters"),
        ("webhook", "whsec_not base64!", "must come base64"),
        ("python", SECRET, "Only webhook consumers sign requests"),
    ],
    ids=["too-short", "bad-base64", "python-kind"],
)
def test_the_admin_refuses_a_secret_that_cannot_sign(admin_client, orders, kind, secret, message):
    handler = "https://shop.example/hooks" if kind == "webhook" else "tests.handlers.billing"
    form = consumer_form(kind=kind, handler=handler, webhook_secret=secret, topics=[orders.pk])

    response = admin_client.post(reverse("admin:eventflow_consumer_add"), form)

    assert message in " ".join(response.context["adminform"].form.errors["webhook_secret"])


def test_the_admin_saves_a_webhook_consumer_and_lists_it_without_its_secret(admin_client, orders):
    url = "https://shop.example/hooks/orders?tenant=7"
    form = consumer_form(kind="webhook", handler=url, webhook_secret=WHSEC, topics=[orders.pk])

    response = admin_client.post(reverse("admin:eventflow_consumer_add"), form)

    assert response.status_code == 302
    consumer = Consumer.objects.get(name="audit")
    assert (consumer.kind, consumer.handler, consumer.webhook_secret) == ("webhook", url, WHSEC)
    listing = admin_client.get(reverse("admin:eventflow_consumer_changelist")).content.decode()
    assert "shop.example/hooks/orders" in listing
    assert WHSEC not in listing


def test_the_dashboard_shows_a_webhook_consumer_as_its_url(client, staff_user, orders):
    ledger("https://shop.example/hooks/orders", orders, webhook_secret=SECRET)
    client.force_login(staff_user)

    html = client.get(reverse("consumer", args=["ledger"])).content.decode()

    assert "Handler webhook → <code>https://shop.example/hooks/orders</code>" in html
    assert SECRET not in html


def test_a_replayed_event_carries_the_replay_id_and_its_original_stream_id(orders, endpoint, redis_client):
    from eventflow import replay_worker, replays

    consumer = ledger(endpoint.url, orders)
    publish("orders", {"order": 7}, type="order.created")
    worker = Worker()
    drain(worker, until=lambda: endpoint.requests)
    plan = replays.plan_history(consumer, orders, (0, 0), None, replays.Filters())
    job = replays.start(plan, consumer, orders, user=None, reason="resend to the ledger", rate=None)
    feeder = replay_worker.Feeder(worker.id, lambda: ["ledger"])

    deadline = time.monotonic() + 15
    while len(endpoint.requests) < 2 and time.monotonic() < deadline:
        feeder.run_once()
        worker.run_once()

    first, again = endpoint.requests
    [(sid, _)] = redis_client.xrange(keys.stream("orders"))
    assert "eventflow-replay" not in first.headers
    assert again.headers["eventflow-replay"] == str(job.pk)
    assert again.headers["eventflow-stream-id"] == sid.decode()
    assert again.body == first.body and again.headers["webhook-id"] == first.headers["webhook-id"]


def test_a_whsec_secret_without_base64_padding_signs_like_the_padded_one():
    from eventflow.webhooks import secret_problem, signing_key

    padded = "whsec_" + base64.b64encode(b"twenty-three rand bytes").decode()
    assert padded.endswith("=")

    assert secret_problem(padded.rstrip("=")) is None
    assert signing_key(padded.rstrip("=")) == signing_key(padded) == b"twenty-three rand bytes"
