"""The dashboard WebSocket: refused unless staff, snapshot on connect, then pushed updates."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard import live
from dashboard.asgi import application
from dashboard.live_pages import PAGES
from eventflow.models import FailedEvent
from eventflow.publishing import publish
from tests.helpers import subscribe

ORIGIN = (b"origin", b"http://localhost")


def session_headers(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [ORIGIN, (b"cookie", cookie.encode())]


async def _open(path: str, headers: list) -> tuple[WebsocketCommunicator, bool]:
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=5)
    return socket, connected


def connect(path: str, headers: list) -> bool:
    async def attempt() -> bool:
        socket, connected = await _open(path, headers)
        await socket.disconnect()
        return connected

    return async_to_sync(attempt)()


def test_an_anonymous_socket_is_refused(transactional_db):
    assert connect(PAGES["overview"].socket_path(), [ORIGIN]) is False


def test_a_non_staff_socket_is_refused(transactional_db, client, django_user_model):
    user = django_user_model.objects.create_user("guest", password="pw-12345678")
    assert connect(PAGES["overview"].socket_path(), session_headers(client, user)) is False


def test_a_socket_from_a_foreign_origin_is_refused(transactional_db, client, staff_user):
    headers = session_headers(client, staff_user)
    headers[0] = (b"origin", b"https://evil.example")
    assert connect(PAGES["overview"].socket_path(), headers) is False


def test_a_staff_socket_gets_the_pages_live_partials_on_connect(transactional_db, client, staff_user, orders, billing):
    headers = session_headers(client, staff_user)

    async def scenario() -> str:
        socket, connected = await _open(PAGES["overview"].socket_path(), headers)
        assert connected
        snapshot = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return snapshot

    html = async_to_sync(scenario)()
    partials = PAGES["overview"].partials
    for partial in partials:
        assert f'id="{partial}"' in html
    assert html.count('hx-swap-oob="true"') == len(partials)
    assert 'href="/consumers/billing/"' in html


def test_updates_pushed_by_the_monitor_arrive(transactional_db, client, staff_user, orders, billing):
    headers = session_headers(client, staff_user)
    subscribe(billing)
    bridge = live.Bridge()

    async def scenario() -> str:
        socket, _ = await _open(PAGES["overview"].socket_path(), headers)
        await socket.receive_from(timeout=5)  # the snapshot
        await sync_to_async(publish)("orders", {"n": 1}, type="order.created")
        await bridge.run_once()
        update = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return update

    update = async_to_sync(scenario)()
    assert 'id="consumer-table" class="card"' in update
    assert "no live worker; backlog 1" in update


def test_the_tail_pushes_new_events_filtered_per_socket(transactional_db, client, staff_user, orders):
    headers = session_headers(client, staff_user)
    bridge = live.Bridge()

    async def scenario() -> list[str]:
        socket, _ = await _open(PAGES["topic"].socket_path("orders"), headers)
        await socket.receive_from(timeout=5)
        await socket.send_to(text_data='{"tail-type": "order.paid"}')
        await socket.receive_from(timeout=5)  # the tail status
        await bridge.run_once()  # sets the tail cursor
        while not await socket.receive_nothing(timeout=0.2):
            await socket.receive_from()
        await sync_to_async(publish)("orders", {"n": 1}, type="order.created")
        await sync_to_async(publish)("orders", {"n": 2, "note": "<script>x</script>"}, type="order.paid")
        bridge._next_sample = float("inf")  # only the tail this step
        await bridge.run_once()
        message = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert 'hx-swap-oob="afterbegin:#tail-rows"' in message
    assert "order.paid" in message and "order.created" not in message
    assert "&lt;script&gt;x&lt;/script&gt;" in message
    assert "1 events filtered out" in message


def test_an_oversized_message_closes_the_socket(transactional_db, client, staff_user, orders):
    headers = session_headers(client, staff_user)

    async def scenario() -> dict:
        socket, _ = await _open(PAGES["topic"].socket_path("orders"), headers)
        await socket.receive_from(timeout=5)
        await socket.send_to(text_data="x" * 10_000)
        closed = await socket.receive_output(timeout=5)
        await socket.disconnect()
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 1009}


def pushed_rows(bridge: live.Bridge, user) -> str:
    """The failed-event rows a bridge step pushes, as a socket of ``user`` renders them."""
    from dashboard.failed_live import rows_html

    ids = [pk for g, m in bridge.collect() if m["type"] == live.FAILED_ROWS for pk in m["ids"]]
    return rows_html(ids, user)


@pytest.mark.parametrize("final", [FailedEvent.Status.RESOLVED, FailedEvent.Status.FAILED_AGAIN])
def test_failed_rows_are_pushed_when_a_replay_settles(transactional_db, orders, billing, staff_user, final):
    row = FailedEvent.objects.create(
        consumer=billing, topic=orders, event_id="e1", event_type="t", event={}, error="x", status="replaying"
    )
    bridge = live.Bridge()
    assert "Replaying" in pushed_rows(bridge, staff_user)
    FailedEvent.objects.filter(pk=row.pk).update(status=final)
    bridge._next_sample = 0
    pushed = pushed_rows(bridge, staff_user)
    assert f'id="failed-row-{row.pk}"' in pushed and 'hx-swap-oob="true"' in pushed
    assert FailedEvent.Status(final).label in pushed


def test_a_replay_that_settles_between_two_steps_is_still_pushed(transactional_db, orders, billing, staff_user):
    from django.utils import timezone

    now = timezone.now()
    row = FailedEvent.objects.create(
        consumer=billing,
        topic=orders,
        event_id="e1",
        event_type="t",
        event={},
        error="x",
        status="resolved",
        replayed_at=now,
        resolved_at=now,
    )
    pushed = pushed_rows(live.Bridge(), staff_user)
    assert f'id="failed-row-{row.pk}"' in pushed and "Resolved" in pushed


def test_pushed_rows_carry_only_the_buttons_their_user_may_press(
    transactional_db, orders, billing, staff_user, django_user_model
):
    from django.contrib.auth.models import Permission

    replayer = django_user_model.objects.create_user("replayer", password="pw-12345678", is_staff=True)
    replayer.user_permissions.add(Permission.objects.get(codename="replay_failedevent"))
    viewer = django_user_model.objects.create_user("viewer", password="pw-12345678", is_staff=True)
    row = _failure(billing, orders, 1)
    from dashboard.failed_live import rows_html

    assert ">Replay</button>" in rows_html([row.pk], staff_user) and ">Discard</button>" in rows_html(
        [row.pk], staff_user
    )
    assert ">Replay</button>" in rows_html([row.pk], replayer) and ">Discard</button>" not in rows_html(
        [row.pk], replayer
    )
    assert "<button" not in rows_html([row.pk], viewer)


def test_a_standby_monitor_pushes_nothing(transactional_db, orders, billing):
    leader, standby = live.Bridge(), live.Bridge()
    assert leader.collect()
    assert standby.collect() == []


def test_a_newly_watched_tail_catches_events_published_while_the_page_loaded(
    transactional_db, client, staff_user, orders
):
    headers = session_headers(client, staff_user)
    publish("orders", {"n": 1}, type="already.on.page")
    from eventflow import keys
    from eventflow.connection import get_redis

    rendered = get_redis().xrange(keys.stream("orders"))[-1][0].decode()
    bridge = live.Bridge()

    async def scenario() -> str:
        socket, _ = await _open(PAGES["topic"].socket_path("orders", query=f"after={rendered}"), headers)
        await socket.receive_from(timeout=5)
        await sync_to_async(publish)("orders", {"n": 2}, type="published.meanwhile")
        bridge._next_sample = float("inf")
        await bridge.run_once()  # the first tail step for this topic
        message = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert "published.meanwhile" in message
    assert "already.on.page" not in message


def test_an_open_event_page_gets_its_delivery_matrix_pushed_as_it_changes(
    transactional_db, client, staff_user, orders, billing
):
    from eventflow import keys
    from eventflow.connection import get_redis
    from tests.helpers import take

    headers = session_headers(client, staff_user)
    subscribe(billing)
    publish("orders", {"n": 1}, type="order.created")
    sid = get_redis().xrange(keys.stream("orders"))[-1][0].decode()
    bridge = live.Bridge()

    async def scenario() -> tuple[str, str]:
        socket, connected = await _open(PAGES["event"].socket_path(f"orders/{sid}"), headers)
        assert connected
        snapshot = await socket.receive_from(timeout=5)
        await sync_to_async(take)("orders", "billing")  # a worker holds it now
        await bridge.run_once()
        update = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return snapshot, update

    snapshot, update = async_to_sync(scenario)()
    assert '<section id="delivery-matrix"' in snapshot and "not yet delivered" in snapshot
    assert '<section id="delivery-matrix"' in update and 'hx-swap-oob="true"' in update
    assert "d-pending" in update and "delivered 1 time" in update


def test_event_page_groups_are_valid_channel_group_names():
    assert live.group_name("event", "orders/1712345678901-0") == "ef.event.orders.1712345678901-0"
    long = live.group_name("event", "t" * 100 + "/1712345678901-0")
    assert len(long) < 100 and long.startswith("ef.event.h")


async def _drain(socket: WebsocketCommunicator) -> None:
    while not await socket.receive_nothing(timeout=0.2):
        await socket.receive_from()


async def _tail_step(bridge: live.Bridge) -> None:
    bridge._next_sample = float("inf")  # only the tail this step
    await bridge.run_once()


def test_resuming_a_paused_tail_fills_in_what_was_published_meanwhile(transactional_db, client, staff_user, orders):
    headers = session_headers(client, staff_user)
    bridge = live.Bridge()

    async def scenario() -> tuple[str, str, str]:
        socket, _ = await _open(PAGES["topic"].socket_path("orders"), headers)
        await bridge.run_once()  # sets the tail cursor
        await _drain(socket)
        await socket.send_to(text_data='{"tail-paused": "on"}')
        await socket.receive_from(timeout=5)
        for n in range(3):
            await sync_to_async(publish)("orders", {"n": n}, type=f"while.paused.{n}")
        await _tail_step(bridge)
        held = await socket.receive_from(timeout=5)
        await socket.send_to(text_data="{}")  # resume
        resumed = await socket.receive_from(timeout=5)
        await sync_to_async(publish)("orders", {"n": 3}, type="after.resume")
        await _tail_step(bridge)
        after = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return held, resumed, after

    held, resumed, after = async_to_sync(scenario)()
    assert "while.paused" not in held and "3 new events held back" in held
    assert 'hx-swap-oob="afterbegin:#tail-rows"' in resumed
    order = [resumed.index(f"while.paused.{n}") for n in (2, 1, 0)]
    assert order == sorted(order)  # newest first, like the rest of the tail
    assert "not shown" not in resumed
    assert "after.resume" in after and "while.paused" not in after  # no row twice


def test_a_resumed_tail_says_how_many_events_it_could_not_fill_in(
    transactional_db, client, staff_user, orders, monkeypatch
):
    monkeypatch.setattr(live, "TAIL_PAGE_ROWS", 5)
    headers = session_headers(client, staff_user)
    bridge = live.Bridge()

    async def scenario() -> str:
        socket, _ = await _open(PAGES["topic"].socket_path("orders"), headers)
        await bridge.run_once()
        await _drain(socket)
        await socket.send_to(text_data='{"tail-paused": "on"}')
        await socket.receive_from(timeout=5)
        for n in range(12):
            await sync_to_async(publish)("orders", {"n": n}, type="while.paused")
        await _tail_step(bridge)  # 10 rows sent, 2 counted as skipped
        await socket.receive_from(timeout=5)
        await socket.send_to(text_data="{}")
        resumed = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return resumed

    resumed = async_to_sync(scenario)()
    assert resumed.count('class="tail-row"') == 5
    assert "Resumed: 7 events published while paused are not shown" in resumed


def _failure(consumer, topic, n: int, **fields) -> FailedEvent:
    return FailedEvent.objects.create(
        consumer=consumer,
        topic=topic,
        event_id=f"e{n}",
        event_type="order.created",
        event={},
        error=f"boom {n}",
        **fields,
    )


async def _messages(socket: WebsocketCommunicator) -> str:
    """Everything the socket was sent until it goes quiet, as one string."""
    received = []
    while not await socket.receive_nothing(timeout=0.3):
        received.append(await socket.receive_from())
    return "\n".join(received)


def _watch_form(**fields: str) -> str:
    import orjson

    return orjson.dumps({"watch": "failed", "status": "open", **fields}).decode()


def test_new_failures_matching_the_pages_filter_are_pushed_to_the_top_of_its_table(
    transactional_db, client, staff_user, orders, billing, shipping
):
    headers = session_headers(client, staff_user)
    shown = _failure(billing, orders, 1)
    bridge = live.Bridge()

    async def scenario() -> str:
        socket, _ = await _open(PAGES["failed"].socket_path(), headers)
        await socket.receive_from(timeout=5)
        newest = f"{shown.last_failed_at.isoformat()}|{shown.pk}"
        await socket.send_to(text_data=_watch_form(consumer="billing", newest=newest))
        await sync_to_async(_failure)(billing, orders, 2)
        await sync_to_async(_failure)(shipping, orders, 3)  # another consumer: not on this page
        await bridge.run_once()
        pushed = await _messages(socket)
        await socket.disconnect()
        return pushed

    pushed = async_to_sync(scenario)()
    inserted = pushed.split('<tbody hx-swap-oob="afterbegin:#failed-rows">', 1)[1].split("</tbody>", 1)[0]
    assert "boom 2" in inserted
    assert "boom 3" not in inserted and "boom 1" not in inserted  # filtered out; already shown
    assert 'aria-label="Select failed event' in inserted and ">Replay</button>" in inserted


def test_an_older_page_or_a_burst_gets_a_notice_that_loads_the_new_rows(
    transactional_db, client, staff_user, orders, billing
):
    from dashboard import failed_live

    headers = session_headers(client, staff_user)
    bridge = live.Bridge()

    async def scenario() -> tuple[str, str]:
        paged, _ = await _open(PAGES["failed"].socket_path(), headers)
        newest, _ = await _open(PAGES["failed"].socket_path(), headers)
        for socket in (paged, newest):
            await socket.receive_from(timeout=5)
        await paged.send_to(text_data=_watch_form(paged="1", newest="2000-01-01T00:00:00+00:00|0"))
        await newest.send_to(text_data=_watch_form(newest="2000-01-01T00:00:00+00:00|0"))
        burst = [
            FailedEvent(consumer=billing, topic=orders, event_id=f"e{n}", event_type="t", event={}, error="x")
            for n in range(failed_live.INSERT_LIMIT + 5)
        ]
        await sync_to_async(FailedEvent.objects.bulk_create)(burst)  # at once, whenever the sockets look
        await bridge.run_once()
        result = await _messages(paged), await _messages(newest)
        for socket in (paged, newest):
            await socket.disconnect()
        return result

    on_paged, on_newest = async_to_sync(scenario)()
    for pushed in (on_paged, on_newest):
        assert "afterbegin:#failed-rows" not in pushed
        assert '<p id="failed-new"' in pushed
        assert f"{failed_live.INSERT_LIMIT + 5} new failed events — show" in pushed
