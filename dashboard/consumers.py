"""The dashboard's WebSocket: one socket per open page, fed by the monitor.

A socket joins its page's channel group, gets the page's live partials at
once (so a reconnecting browser is never stale), then forwards what the
monitor pushes. Topic pages also filter and pause their live tail here, per
socket, from the filter form the browser sends.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from eventflow.stream_ids import id_order

from . import live
from .failed_live import FailedWatch, bulk_replays_html, consumer_failed_html, rows_html
from .live_pages import PAGES
from .params import BadParam

MAX_MESSAGE_BYTES = 4096  # the browser only ever sends a small filter form (headers stripped)
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process
# Daphne (autobahn's sendClose) lets an application close only with 1000 or
# 3000-4999 and raises on 1009; its own size limit drops the TCP connection
# without a close frame. So under daphne the socket closes with 4009, the same
# meaning in the private range, rather than crashing the consumer (1011).
CLOSE_TOO_BIG_PRIVATE = 4009
REFRESH_WATCH_AFTER = 10.0



class TailFilter:
    """What one socket wants to see of a topic's live tail."""

    def __init__(self, after: str = "") -> None:
        self.after = id_order(after)  # rows up to here are on the page already
        self.type = self.key = self.text = ""
        self.paused = False
        self.held = 0  # rows not shown while paused or filtered out
        self.skipped = 0  # rows the monitor did not send at all (sampling at high rates)
        self.paused_from = self.after  # the newest row handled when the tail was paused
        self.missed = 0  # rows published since the pause (sent or skipped by the monitor)
        self.gap = 0  # rows a resumed tail could not fill in (more than the page keeps)

    def update(self, form: dict[str, Any]) -> bool:
        """Apply the filter form; return True if it resumes a paused tail."""
        was_paused = self.paused
        self.type = str(form.get("tail-type") or "").strip()[:200]
        self.key = str(form.get("tail-key") or "").strip()[:200]
        self.text = str(form.get("tail-text") or "").strip().lower()[:200]
        self.paused = bool(form.get("tail-paused"))
        self.held = self.gap = 0
        if self.paused and not was_paused:
            self.paused_from, self.missed = self.after, 0
        return was_paused and not self.paused

    def catch_up(self, rows: list[dict], limit: int) -> list[dict]:
        """Take the rows published since the pause (newest first); return those to show.

        If the page cap cut them short, ``gap`` says how many are left out.
        """
        if not rows:
            return []
        if len(rows) >= limit:
            known = sum(1 for row in rows if id_order(row["id"]) <= self.after)
            self.gap = max(0, self.missed - known)
        self.after = max(self.after, id_order(rows[0]["id"]))
        return [row for row in rows if self.accepts(row)]

    def is_new(self, row: dict) -> bool:
        """True once per row: rows at or before ``after`` are dropped."""
        position = id_order(row["id"])
        if position <= self.after:
            return False
        self.after = position
        return True

    def accepts(self, row: dict) -> bool:
        return (
            (not self.type or row["type"] == self.type)
            and (not self.key or row["key"] == self.key)
            and (not self.text or self.text in row["text"])
        )


def _tail_html(rows: list[dict]) -> str:
    """Rows for the top of the live tail (newest first), as one out-of-band swap."""
    if not rows:
        return ""
    return '<tbody hx-swap-oob="afterbegin:#tail-rows">' + "".join(r["html"] for r in rows) + "</tbody>"


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        self.page = kwargs["page"]
        if user is None or not user.is_authenticated or not user.is_staff or self.page not in PAGES:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        query_string = self.scope.get("query_string", b"").decode()
        try:
            self.name = PAGES[self.page].live_name(kwargs.get("name", ""), query_string)
        except BadParam:
            await self.close()  # a query no page of the list has: refused, as the page answers 400
            return
        self.group = live.group_name(self.page, self.name)
        query = parse_qs(query_string)
        self.tail = TailFilter(after=(query.get("after") or [""])[0])
        self.failed: FailedWatch | None = None
        self._watched_at = 0.0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._watch()
        snapshot = await database_sync_to_async(live.snapshot_html)(self.page, self.name)
        await self.send(text_data=snapshot + await self._mine())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_BYTES:
            await self._close_too_big()  # message too big (or binary)
            return
        try:
            form = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            return
        if isinstance(form, dict) and self.page == "failed" and form.get("watch") == "failed":
            self.failed = FailedWatch.from_form(form)  # the table was (re)rendered: what it shows now
            await self.live_failed_new({})  # rows that failed while the page loaded
        elif isinstance(form, dict) and self.page == "topic":
            html = await self._resume() if self.tail.update(form) else ""
            await self.send(text_data=html + self._tail_status())

    async def _close_too_big(self) -> None:
        """Close with 1009; on a server that refuses it from an application (daphne raises), with 4009."""
        try:
            await self.close(code=CLOSE_TOO_BIG)
        except Exception as exc:  # noqa: BLE001 - autobahn (daphne) raises a bare Exception: "invalid close code 1009 …"
            if "close code" not in str(exc):
                raise
            await self.close(code=CLOSE_TOO_BIG_PRIVATE)

    async def _resume(self) -> str:
        """Fill the tail in with what was published while it was paused, up to the page's cap."""
        since = "{}-{}".format(*self.tail.paused_from)
        rows = await database_sync_to_async(live.catch_up)(self.name, since, live.TAIL_PAGE_ROWS)
        return _tail_html(self.tail.catch_up(rows, live.TAIL_PAGE_ROWS))

    # -- messages from the monitor (channel layer) ------------------------------

    async def live_fragments(self, message: dict) -> None:
        await self._watch()
        await self.send(text_data=message["html"] + await self._mine())

    async def _mine(self) -> str:
        """What this socket renders itself, for its user (with the buttons it may press): a consumer
        page's failed events, the failed-events page's bulk replays and their progress."""
        if self.page == "consumer":
            return await database_sync_to_async(consumer_failed_html)(self.name, self.scope["user"])
        if self.page == "failed":
            return await database_sync_to_async(bulk_replays_html)(self.scope["user"])
        return ""

    async def live_failed_rows(self, message: dict) -> None:
        ids = self.failed.on_page(message["ids"]) if self.failed is not None else []
        if ids:
            await self.send(text_data=await database_sync_to_async(rows_html)(ids, self.scope["user"]))

    async def live_failed_new(self, message: dict) -> None:
        if self.failed is not None:
            html = await database_sync_to_async(self.failed.push)(self.scope["user"])
            if html:
                await self.send(text_data=html)

    async def live_tail(self, message: dict) -> None:
        self.tail.skipped += message["skipped"]
        fresh = [row for row in reversed(message["rows"]) if self.tail.is_new(row)][::-1]
        if self.tail.paused:
            self.tail.missed += len(fresh) + message["skipped"]
        if not fresh:
            return
        rows = [row for row in fresh if self.tail.accepts(row)]
        self.tail.held += len(fresh) - len(rows)
        if self.tail.paused:
            self.tail.held += len(rows)
            rows = []
        await self.send(text_data=_tail_html(rows) + self._tail_status())

    def _tail_status(self) -> str:
        return render_to_string("dashboard/topic.html#tail-status", {"tail": self.tail, "oob": True})

    async def _watch(self) -> None:
        if time.monotonic() - self._watched_at > REFRESH_WATCH_AFTER:
            self._watched_at = time.monotonic()
            await database_sync_to_async(live.watch)(self.page, self.name)
