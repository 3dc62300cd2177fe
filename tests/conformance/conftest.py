"""Outside clients against a real EventFlow: a daphne server, a worker, a webhook receiver.

Every test here speaks through a library nobody here wrote (the CloudEvents
SDKs, ``standardwebhooks``, openapi-spec-validator, Ajv), so what passes is
what those clients understand, not what our own tests assume.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from eventflow import keys
from eventflow.worker import Worker
from tests.helpers import drain
from tests.eventflow.test_webhooks import Endpoint, Request, endpoint, ledger  # noqa: F401 - endpoint is a fixture

JS = Path(__file__).resolve().parent / "js"
# A whsec_ secret written without its base64 padding, as some senders hand them out.
SECRET = "whsec_" + base64.b64encode(b"conformance-signing-key").decode().rstrip("=")


def node_or_skip() -> str:
    """The machine's node with the npm packages installed; CI must have both, a laptop may skip."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (JS / "node_modules" / "cloudevents").is_dir():
        problem = "run `npm ci --prefix tests/conformance/js` first"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the JavaScript conformance suite, but {problem}")
        pytest.skip(problem)
    return node


def run_node(script: str, command: str, payload: object) -> object:
    """Run ``tests/conformance/js/<script>`` with a JSON payload on stdin; return its JSON answer."""
    run = subprocess.run(
        [node_or_skip(), str(JS / script), command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=JS,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@dataclass
class Flow:
    """shop → orders → ledger (a signed webhook), over a real ASGI server."""

    url: str
    token: str
    endpoint: Endpoint
    redis: object

    @property
    def publish_url(self) -> str:
        return f"{self.url}/api/v1/topics/orders/events"

    def post(self, headers: dict[str, str], body: bytes | str) -> httpx.Response:
        """POST as ``requests`` would: header text goes out as latin-1 where it can (the 1.x SDK does not
        percent-encode), as UTF-8 otherwise."""
        encoded = {name: _header_bytes(value) for name, value in headers.items()}
        encoded["Authorization"] = f"Bearer {self.token}".encode()
        return httpx.post(self.publish_url, headers=encoded, content=body, timeout=10)

    def stored(self) -> list[dict]:
        return [orjson.loads(fields[b"e"]) for _, fields in self.redis.xrange(keys.stream("orders"))]

    def deliver(self) -> list[Request]:
        """Let a worker POST every stored event to the receiver; return the requests, each signature verified."""
        count = len(self.stored())
        drain(Worker(), until=lambda: len(self.endpoint.requests) >= count)
        assert len(self.endpoint.requests) == count
        receiver = Webhook(SECRET)
        for request in self.endpoint.requests:
            receiver.verify(request.body, request.headers)  # raises WebhookVerificationError if it is off
        return self.endpoint.requests


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin1")
    except UnicodeEncodeError:
        return value.encode()


@pytest.fixture
def flow(asgi_server: str, shop_token: str, orders, endpoint: Endpoint, redis_client) -> Iterator[Flow]:  # noqa: F811
    ledger(endpoint.url, orders, webhook_secret=SECRET)
    yield Flow(asgi_server, shop_token, endpoint, redis_client)
