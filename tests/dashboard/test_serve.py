"""``manage.py serve``: the whole product from one command, as real processes.

These start ``serve`` with its own data directory and no ``REDIS_URL``, so it
runs its own embedded Valkey and SQLite database, exactly as on a fresh machine.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from dashboard.live_pages import PAGES
from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.processes


@dataclass
class Served:
    process: subprocess.Popen
    log: Path
    data_dir: Path
    url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def printed(self, pattern: str) -> str:
        """Return the first group of ``pattern`` in the output, waiting until it appears."""
        match = wait_for(lambda: re.search(pattern, self.output()), timeout=60, message=pattern)
        return match.group(1)

    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.data_dir / "valkey.sock"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "EVENTFLOW_KEY_PREFIX")}
    # serve collects the static files: into the test's folder, never the checkout's.
    paths = {"EVENTFLOW_DATA_DIR": str(data_dir), "STATIC_ROOT": str(data_dir / "static")}
    return {**env, **paths, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator:
    """Start ``manage.py serve`` with the given options; anything left running is killed after the test."""
    started: list[Served] = []

    def start(*options: str, port: int | None = None) -> Served:
        port = port or free_port()
        log = tmp_path / f"serve-{len(started)}.log"
        data_dir = tmp_path / "data"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(port), *options],
                cwd=ROOT,
                env=serve_env(data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        served = Served(process, log, data_dir, f"http://127.0.0.1:{port}")
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.terminate()  # serve stops its children; kill it only if that hangs
            try:
                served.process.wait(60)
            except subprocess.TimeoutExpired:
                served.process.kill()
                served.process.wait(10)


def answering(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def parents() -> dict[int, int]:
    """Map every running process to its parent (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        found[int(stat.parent.name)] = int(fields[1])
    return found


def children_of(pid: int) -> set[int]:
    """Every descendant of ``pid``."""
    tree = parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Still running: a zombie has exited and only waits for init to reap it (containers may never)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def command_of(pid: int) -> str:
    """A process's command line, to name a straggler."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip() or str(pid)
    except OSError:
        return str(pid)


def counters(served: Served, topic: str) -> dict[str, int]:
    raw = served.redis().hgetall(f"ef:{{{topic}}}:counters")
    return {k.decode(): int(v) for k, v in raw.items()}


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    client.get("/admin/login/")
    return client.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )


def assert_static_is_hashed_and_cached(client: httpx.Client) -> None:
    """Pages link hashed CSS and JS names, which answer compressed and cached for a year."""
    page = client.get("/login/").text
    linked = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
    assert {name.rsplit(".", 1)[1] for name in linked} == {"css", "js"}
    for name in linked:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", name), name
        reply = client.get(name, headers={"Accept-Encoding": "br, gzip"})
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "max-age=315360000, public, immutable"
        assert reply.headers["content-encoding"] in ("br", "gzip")


def assert_sockets_check_origin_and_session(url: str, session: str) -> None:
    """Under the server serve runs, a socket needs an allowed Origin and a staff session."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    socket_url = url.replace("http://", "ws://") + PAGES["overview"].socket_path()
    for origin, cookie in (("http://evil.example", f"sessionid={session}"), (url, "")):
        with pytest.raises(InvalidStatus) as refused:
            connect(socket_url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=10)
        assert refused.value.response.status_code == 403
    with connect(socket_url, origin=url, additional_headers={"Cookie": f"sessionid={session}"}) as live:
        assert 'id="headline"' in live.recv(timeout=10)  # the current state, sent on connect


def test_serve_demo_runs_the_whole_product_and_stops_cleanly_on_ctrl_c(start_serve):
    served = start_serve("--demo", "--workers", "2", "--rate", "40")
    password = served.printed(r"as: admin / (\S+)")
    token = served.printed(r"token \(rotated just now\): (\S+)")
    served.printed(r"(EventFlow is running)")

    home = wait_for(lambda: answering(served.url + "/"), message="the web server")
    assert home.status_code == 302 and "/login/" in home.headers["location"]
    with httpx.Client(base_url=served.url, timeout=5) as client:
        assert log_in(client, "admin", password).status_code == 302
        admin = client.get("/admin/")
        assert admin.status_code == 200 and "Failed events" in admin.text
        assert client.get("/static/dashboard/eventflow.css").status_code == 200
        assert_static_is_hashed_and_cached(client)
        assert_sockets_check_origin_and_session(served.url, client.cookies["sessionid"])
    published = httpx.post(
        served.url + "/api/v1/topics/orders/events",
        json={"type": "order.created", "data": {"order_id": "ord_test", "total": "1.00", "lines": []}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert published.status_code == 202 and published.json()["accepted"] == 1

    # The simulated shop publishes; the workers handle, retry and dead-letter.
    wait_for(lambda: counters(served, "orders").get("acked:billing", 0) > 20, timeout=30, message="billing acks")
    wait_for(lambda: counters(served, "shipments").get("published", 0) > 0, timeout=30, message="shipments")
    wait_for(lambda: counters(served, "orders").get("dead:fraud-check", 0) > 0, timeout=40, message="a dead letter")

    family = children_of(served.process.pid)
    assert len(family) >= 5  # valkey, web, two workers, the demo producer
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(60) == 0, served.output()
    assert "EventFlow stopped cleanly (0 restarts of children that died)." in served.output()
    assert "Stopped the embedded Valkey" in served.output()
    assert [command_of(pid) for pid in family if alive(pid)] == []


def test_serve_restarts_a_killed_worker_alone_and_keeps_the_rest_running(start_serve):
    served = start_serve("--workers", "1", "--web-processes", "1")
    worker_pid = int(served.printed(r"worker-1\s+pid (\d+)"))
    web_pid = int(served.printed(r"web\s+pid (\d+)"))
    served.printed(r"(EventFlow is running)")

    os.kill(worker_pid, signal.SIGKILL)

    served.printed(rf"worker-1 \(pid {worker_pid}\) (was killed by SIGKILL); restarting it in 1s")
    new_pid = int(served.printed(r"worker-1 restarted \(pid (\d+); restart 1\)"))
    assert new_pid != worker_pid and alive(new_pid) and alive(web_pid)
    assert served.process.poll() is None
    assert answering(served.url + "/api/v1/health").status_code == 200
    family = children_of(served.process.pid)
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(60) == 0, served.output()
    assert "EventFlow stopped cleanly (1 restarts of children that died)." in served.output()
    assert [pid for pid in family if alive(pid)] == []


def test_serve_refuses_a_port_in_use_before_starting_anything(start_serve):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = start_serve(port=port)
        assert served.process.wait(60) == 1

    assert f"port {port} on 127.0.0.1 is already in use" in served.output()
    assert "Started:" not in served.output()
    assert not (served.data_dir / "valkey.sock").exists()
