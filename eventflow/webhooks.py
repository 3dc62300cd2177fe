"""Webhook consumers: every event is POSTed to the consumer's URL.

One request per delivery attempt (the CloudEvents HTTP binding, structured mode)::

    POST <the consumer's URL>
    Content-Type: application/cloudevents+json; charset=utf-8
    EventFlow-Consumer: <consumer name>
    EventFlow-Attempt: <1, 2, ... ; a replay starts again at 1>
    EventFlow-Replay: <the replay job's id>  (only on a delivery a replay job sent again)
    EventFlow-Stream-Id: <the event's original stream id>  (with EventFlow-Replay)
    webhook-id: msg_<32 base32 chars>      (derived from consumer + source + id: the same on every
                                            attempt and replay of the event to this consumer,
                                            unique per event; dedupe on it)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64>          (only when the consumer has a signing secret)
    traceparent, tracestate: <W3C trace context>  (only when the event carries a valid traceparent)

    <the event's envelope as JSON: what a Python handler sees>

A 2xx answer acknowledges the event. Anything else is a failed attempt, retried
with the consumer's backoff and dead-lettered after ``max_attempts`` like a
Python handler's exception: another status (redirects are not followed), no
answer within ``request_timeout()``, or no connection at all.

The signature follows Standard Webhooks (v1): HMAC-SHA256, keyed with the
secret, over ``<webhook-id>.<webhook-timestamp>.<body>``, in base64. The key is
the secret's UTF-8 bytes, or, for a secret written ``whsec_<base64>``, the
decoded bytes, which is what the ``standardwebhooks`` libraries expect.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from . import tracing
from .errors import DeliveryFailed
from .events import Event

if TYPE_CHECKING:
    from .delivery import ConsumerSpec

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "EventFlow-Webhooks/1"
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 16
MAX_TIMEOUT = 10.0  # seconds; like the big webhook senders, a receiver should answer fast and work later
ACK_TIMEOUT_SHARE = 0.8  # answer within this share of the ack timeout, or another worker may take the event
READ_LIMIT = 64 * 1024  # bytes of an answer kept; the rest is not read
EXCERPT_CHARS = 200
DETAILS_CHARS = 4000

_TIMEOUT_VERBS: dict[type, str] = {httpx.ConnectTimeout: "connecting to", httpx.WriteTimeout: "sending to"}
_local = threading.local()


@dataclass(frozen=True, slots=True)
class WebhookHandler:
    """A handler that POSTs each event to ``url``; it raises DeliveryFailed unless answered 2xx."""

    url: str
    consumer: str
    timeout: float
    key: bytes = dataclasses.field(default=b"", repr=False)  # empty: requests go unsigned

    def __call__(self, event: Event) -> None:
        # The envelope as stored: the cheapest and most faithful body (what the
        # producer published, as a Python handler sees it).
        body = event.to_json()
        deadline = time.monotonic() + self.timeout
        try:
            with _client().stream(
                "POST", self.url, content=body, headers=self.headers(event, body), timeout=self.timeout
            ) as response:
                answer = _read_some(response, deadline)
        except httpx.TimeoutException as exc:
            verb = _TIMEOUT_VERBS.get(type(exc), "waiting for")
            raise DeliveryFailed(f"timeout after {self.timeout:g} s {verb} {self.url}") from None
        except httpx.ConnectError as exc:
            raise DeliveryFailed(f"cannot connect to {self.url}: {exc}") from None
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"{type(exc).__name__} from {self.url}: {exc}") from None
        if not response.is_success:
            raise DeliveryFailed(_status_message(self.url, response, answer), _details(response, answer))

    def headers(self, event: Event, body: bytes) -> dict[str, str]:
        message_id = webhook_id(self.consumer, event.source, event.id)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": CONTENT_TYPE,
            "EventFlow-Consumer": self.consumer,
            "EventFlow-Attempt": str(event.attempt),
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
        }
        if event.replay is not None:
            headers["EventFlow-Replay"] = str(event.replay)
            headers["EventFlow-Stream-Id"] = event.stream_id
        if self.key:
            headers["webhook-signature"] = sign(self.key, message_id, timestamp, body)
        headers.update(tracing.headers_for(event))  # W3C trace context, for the receiver's own spans
        return headers


def webhook_id(consumer: str, source: str, event_id: str) -> str:
    """The ``webhook-id`` of one event for one consumer: stable across attempts and replays.

    CloudEvents makes ``source`` + ``id`` unique per event; with the consumer's
    name beside them the id is unique per delivery target, and its hash is
    header-safe whatever characters the event id holds: ``msg_`` and 32
    lowercase base32 characters of SHA-256 over ``consumer NUL source NUL id``.
    """
    digest = hashlib.sha256(f"{consumer}\0{source}\0{event_id}".encode()).digest()
    return "msg_" + base64.b32encode(digest[:20]).decode().lower()


def handler_for(spec: ConsumerSpec) -> WebhookHandler:
    return WebhookHandler(
        url=spec.handler,
        consumer=spec.name,
        timeout=request_timeout(spec.ack_timeout),
        key=signing_key(spec.webhook_secret),
    )


def request_timeout(ack_timeout: float) -> float:
    """Seconds to wait for a connection and for each read of the answer."""
    return min(MAX_TIMEOUT, ACK_TIMEOUT_SHARE * ack_timeout)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decoded, any other secret as UTF-8."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX)
        # Padding is optional, as in the standardwebhooks libraries.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: Standard Webhooks v1 over ``id.timestamp.body``."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook consumer's address, or None if it can."""
    absolute = "Enter an absolute http:// or https:// URL, e.g. 'https://shop.example/hooks/orders'."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return absolute
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return absolute
    if parts.username is not None or parts.password is not None:
        # The URL is shown in lists, on the dashboard and in every error message.
        return "Leave credentials out of the URL; set a signing secret so the receiver can trust requests."
    return None


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` cannot sign webhook requests, or None if it can."""
    try:
        key = signing_key(secret)
    except (binascii.Error, ValueError):
        return f"After '{SECRET_PREFIX}' must come base64; or use a secret without that prefix."
    if len(key) < MIN_KEY_BYTES:
        return f"Use at least {MIN_KEY_BYTES} characters, e.g. a random token from Python's secrets.token_urlsafe(32)."
    return None


def _client() -> httpx.Client:
    """This thread's HTTP client; its connections are kept alive from one event to the next."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(
            # Identity: an answer is only ever read in part, so a compressed one buys nothing.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            follow_redirects=False,
        )
    return client


def _read_some(response: httpx.Response, deadline: float) -> bytes:
    """The start of an answer, read until READ_LIMIT bytes or the deadline.

    A short answer is read whole, so its connection goes back to the pool; a
    long or slow one is cut off (its connection closed) rather than waited for.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= READ_LIMIT or time.monotonic() > deadline:
            break
    return b"".join(chunks)[:READ_LIMIT]


def _status_message(url: str, response: httpx.Response, answer: bytes) -> str:
    status = response.status_code
    if response.is_redirect:
        return f"HTTP {status} from {url}: redirects are not followed (Location: {response.headers['location']})"
    excerpt = " ".join(answer.decode(errors="replace").split())[:EXCERPT_CHARS]
    return f"HTTP {status} from {url}: {excerpt}" if excerpt else f"HTTP {status} from {url}"


def _details(response: httpx.Response, answer: bytes) -> str:
    """The answer as an operator wants it next to the error: status line, headers, body."""
    lines = [f"HTTP {response.status_code} {response.reason_phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items() if name != "set-cookie"]
    lines += ["", answer.decode(errors="replace")[:DETAILS_CHARS]]
    return "\n".join(lines)
