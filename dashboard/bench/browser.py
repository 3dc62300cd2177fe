"""Publish → visible in a real browser tab: headless Chromium on a topic page's live tail.

The page is opened logged in as staff; a MutationObserver notes, at the first
animation frame after each new tail row enters the DOM, how long ago the
row's event was sent (its data carries the send time as ``t``). Playwright
counts the WebSocket frames the tab receives.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Runs in the page: rows are "visible" at the first frame after they are inserted.
OBSERVE = """() => {
  window.__efSeen = [];
  const rows = document.getElementById("tail-rows");
  new MutationObserver((records) => {
    const added = [];
    for (const record of records)
      for (const node of record.addedNodes)
        if (node.nodeType === 1 && node.classList.contains("tail-row")) added.push(node);
    if (!added.length) return;
    requestAnimationFrame(() => {
      const now = Date.now();
      for (const node of added) {
        const sent = /"t":([0-9.]+)/.exec(node.textContent);
        if (sent) window.__efSeen.push(now - parseFloat(sent[1]) * 1000);
      }
    });
  }).observe(rows, {childList: true});
}"""


@dataclass(slots=True)
class TabReport:
    """What one tab saw in the measured window."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)  # time.monotonic() per WebSocket frame received


def available() -> str:
    """Empty if the browser can run here, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"Playwright is not importable ({exc})"
    import os

    return "" if os.access(CHROMIUM, os.X_OK) else f"no Chromium at {CHROMIUM}"


def watch_topic(url: str, cookie: tuple[str, str], warm: float, seconds: float) -> TabReport:
    """Open ``url`` with the session cookie; measure for ``seconds`` after ``warm``."""
    # Playwright's sync API runs an event loop: keep it off the thread Django's ORM uses.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_watch, url, cookie, warm, seconds).result(timeout=warm + seconds + 120)


def _watch(url: str, cookie: tuple[str, str], warm: float, seconds: float) -> TabReport:
    from playwright.sync_api import sync_playwright

    report = TabReport()
    frames: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            # The cookie's path is the whole site: the socket's path is not the page's.
            site = url.split("/", 3)[:3]
            context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": "/".join(site) + "/"}])
            page = context.new_page()
            page.on("websocket", lambda ws: ws.on("framereceived", lambda _payload: frames.append(time.monotonic())))
            response = page.goto(url, wait_until="load")
            if response is None or response.status != 200:
                raise RuntimeError(f"the topic page answered {response and response.status}")
            page.wait_for_timeout(warm * 1000)
            page.evaluate(OBSERVE)
            start = time.monotonic()
            page.wait_for_timeout(seconds * 1000)
            report.latencies_ms = list(page.evaluate("window.__efSeen"))
            report.seconds = time.monotonic() - start
            report.frames = [t for t in frames if t >= start]
        finally:
            browser.close()
    return report
