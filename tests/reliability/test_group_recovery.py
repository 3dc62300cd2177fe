"""A worker whose consumer groups vanished (Redis restarted without persistence)."""

from __future__ import annotations

import pytest
import redis

from eventflow import keys, publish
from eventflow.worker import ConsumerRunner, load_specs
from tests import handlers
from tests.helpers import make_consumer


def test_a_worker_that_lost_its_groups_delivers_what_was_published_since(orders, redis_client):
    make_consumer("billing", "tests.handlers.billing", orders)
    runner = ConsumerRunner(load_specs(["billing"])[0], "worker-1")
    runner.run_once()
    redis_client.delete(keys.stream("orders"))  # what a restart without persistence does, groups and all

    published = publish("orders", {"n": 1}, type="order.created")
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        runner.run_once()
    runner.forget_groups()  # what the worker loop does on NOGROUP
    runner.run_once()

    assert [event_id for event_id, _, _ in handlers.seen("billing")] == [published]
