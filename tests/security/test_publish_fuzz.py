"""Issue 4, item 7: hostile input to the publish API, against the real ASGI server.

Hypothesis generates cases from twelve families (``fuzz.STRATEGIES``) and a
hand-written corpus adds the ones a generator would rarely hit (bodies one byte
over the limit, chunked bodies with and without an understated
``Content-Length``, sent over raw sockets). Every case must be answered with
a 4xx and a JSON error; after each family the server must still be healthy.
CI: at least 1,000 cases; ``EVENTFLOW_LONG=1``: at least 10,000.
"""

from __future__ import annotations

import math
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings

from tests.security.fuzz import STRATEGIES, Probe, corpus

pytestmark = [pytest.mark.processes]

CASES = 10_000 if os.environ.get("EVENTFLOW_LONG") == "1" else 1_000


def run_family(probe: Probe, strategy, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def case_is_refused(case) -> None:
        probe.send(case)

    case_is_refused()


def test_every_hostile_request_gets_a_4xx_json_error_and_the_server_stays_healthy(asgi_server, tokens):
    probe = Probe(asgi_server, tokens)
    started = time.monotonic()
    handwritten = corpus()
    for case in handwritten:
        probe.send(case)
    probe.healthy()
    per_family = math.ceil((CASES - len(handwritten)) / len(STRATEGIES)) + 5
    sent_by_family = {}
    for name, strategy in STRATEGIES.items():
        before = probe.sent
        run_family(probe, strategy, per_family)
        sent_by_family[name] = probe.sent - before
        probe.healthy()

    print(f"\n== hostile input: {probe.sent} cases in {time.monotonic() - started:.1f} s ==")
    print(f"corpus {len(handwritten)}; generated {sent_by_family}")
    print(f"answers {dict(sorted(probe.statuses.items()))}; refused by daphne itself: {probe.refused_by_http_server}")
    assert probe.sent >= CASES
    assert all(400 <= status < 500 for status in probe.statuses)
