"""Issue 9, cases 3 and 4: a Redis that may evict, and a Redis that is full.

Each test starts a redis-server of its own on a free port with a tiny
``maxmemory`` (never the shared server), points this process at it, and
checks what an operator and a producer would see: health, ``check --deploy``,
the monitor snapshot and the overview banner, and every publish door (the
Django view, the thin ASGI path, ``publish()``).
"""

from __future__ import annotations

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from eventflow import conf, keys, monitor, publish_batch
from eventflow.errors import BrokerUnavailable, RedisEvicting, RedisFull
from eventflow.health import memory_problems
from tests.eventflow.test_asgi_publish import ThinClient
from tests.reliability.conftest import use_broker

URL = "/api/v1/topics/orders/events"
BIG = "x" * 50_000  # 2 MB of maxmemory holds a few dozen of these


@pytest.fixture
def small_redis(own_redis, settings):
    """Start a 2 MB Redis with the given policy (and options) and point this process at it."""

    def start(policy: str, *extra: str):
        server = own_redis(appendonly=False, extra=("--maxmemory", "2mb", "--maxmemory-policy", policy, *extra))
        use_broker(settings, server.url)
        return server

    return start


def fill(topic: str = "orders") -> int:
    """Publish big, then small events until Redis refuses even a small one; return how many it accepted.

    Redis refuses a write only while its used memory is over ``maxmemory``;
    a refused big write frees its buffers, so a small one may still fit.
    """
    accepted = 0
    for data in (BIG, "x" * 100):
        for _ in range(2000):
            try:
                accepted += publish_batch(topic, [{"type": "filler", "data": data}]).accepted
            except RedisFull:
                break
        else:
            raise AssertionError("Redis never said it was full")
    return accepted


def post(client, token: str, body: bytes = b'{"type": "order.created", "data": {"n": 1}}'):
    return client.post(URL, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"})


def problems(body: dict) -> dict[str, dict]:
    return {p["code"]: p for p in body["redis"]["problems"]}


# --- case 4: Redis full (noeviction at maxmemory) --------------------------------------


def test_a_full_redis_is_said_to_be_full_by_every_publish_door_and_loses_nothing(
    small_redis, orders, shop_token, client
):
    small_redis("noeviction")

    accepted = fill()
    with pytest.raises(RedisFull) as python_error:
        publish_batch("orders", [{"type": "order.created", "id": "with-dedup-key", "data": {}}])  # the Lua path
    view = post(client, shop_token)
    thin = post(ThinClient(client), shop_token)

    assert accepted > 10
    assert isinstance(python_error.value, BrokerUnavailable) and python_error.value.code == "redis_full"
    for answer in (view, thin):
        assert answer.status_code == 503
        assert answer["Retry-After"]
        error = answer.json()["error"]
        assert error["code"] == "redis_full"
        assert "Redis is full" in error["message"] and "unreachable" not in error["message"]
    assert redis.Redis.from_url(conf.get("REDIS_URL")).xlen(stream_key()) == accepted  # every 202 is stored
    print(f"\n[full redis] accepted {accepted} events (50 KB, then 100 B) in 2 MB, then 503 redis_full on 3 doors")


def test_health_warns_with_the_figures_when_redis_memory_is_nearly_full(small_redis, orders, client):
    small_redis("noeviction")
    before = client.get("/api/v1/health").json()

    fill()
    after = client.get("/api/v1/health")

    assert "redis_memory_high" not in problems(before)
    assert after.status_code == 200  # full is a warning: nothing is lost, publishing says 503 itself
    warning = problems(after.json())["redis_memory_high"]
    memory = after.json()["redis"]["memory"]
    assert warning["level"] == "warning"
    assert memory["used"] >= 0.9 * memory["max"] and memory["max"] == 2 * 1024 * 1024
    assert "% full" in warning["message"] and "of 2.0 MB" in warning["message"]
    print(f"\n[nearly full] {warning['message']}")


# --- case 3: Redis that may evict --------------------------------------------------------


def test_an_evicting_redis_is_a_health_error_and_check_deploy_refuses_it(small_redis, db, client):
    small_redis("allkeys-lru")

    health = client.get("/api/v1/health")
    with pytest.raises(SystemCheckError) as check:
        call_command("check", "--deploy")

    assert health.status_code == 503 and health.json()["status"] == "degraded"
    error = problems(health.json())["redis_evicting"]
    assert error["level"] == "error" and "allkeys-lru" in error["message"]
    assert "eventflow.E010" in str(check.value) and "allkeys-lru" in str(check.value)


def test_the_monitor_sees_the_policy_change_while_running_and_the_overview_raises_it(
    small_redis, settings, client, staff_user
):
    server = small_redis("noeviction")
    settings.EVENTFLOW_MONITOR_BROKER_EVERY = 0.0
    sampler = monitor.Monitor()
    client.force_login(staff_user)
    calm = sampler.step()
    redis.Redis.from_url(server.url).config_set("maxmemory-policy", "volatile-lru")

    alarmed = sampler.step()
    page = client.get("/").content.decode()

    assert calm["broker"]["problems"] == []
    assert [p["code"] for p in alarmed["broker"]["problems"]] == ["redis_evicting"]
    assert 'data-problem="redis_evicting"' in page and "maxmemory-policy volatile-lru" in page


def test_publishing_refuses_an_evicting_redis_unless_the_operator_allows_it(
    small_redis, settings, orders, shop_token, client
):
    small_redis("allkeys-lru")

    with pytest.raises(RedisEvicting):
        publish_batch("orders", [{"type": "order.created", "data": {}}])
    refused = [post(client, shop_token), post(ThinClient(client), shop_token)]
    settings.EVENTFLOW_ALLOW_EVICTING_REDIS = True
    allowed = [post(client, shop_token), post(ThinClient(client), shop_token)]

    for answer in refused:
        assert answer.status_code == 503 and answer["Retry-After"]
        assert answer.json()["error"]["code"] == "redis_evicting"
    assert [a.status_code for a in allowed] == [202, 202]
    assert publish_batch("orders", [{"type": "order.created", "data": {}}]).accepted == 1


def test_a_redis_that_forbids_config_still_reports_its_policy_and_an_unknown_one_is_said(small_redis, db, client):
    small_redis("allkeys-lru", "--rename-command", "CONFIG", "")

    body = client.get("/api/v1/health").json()

    assert body["redis"]["durability"] == "unknown"  # CONFIG GET refused: not guessed
    assert body["redis"]["memory"]["policy"] == "allkeys-lru"  # INFO memory still tells
    assert "redis_evicting" in problems(body)
    unknown = memory_problems(None, 0, 0)
    assert [(p.level, p.code) for p in unknown] == [("warning", "redis_policy_unknown")]


def stream_key() -> str:
    from eventflow.models import Topic

    return keys.stream(Topic.objects.get(name="orders").name)
