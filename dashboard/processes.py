"""Running the product's processes side by side, for ``manage.py serve``.

A ``Supervisor`` starts child processes, watches them, and stops them all
(SIGTERM, a grace period, then SIGKILL) when asked to. A child that dies on
its own (a handler calling ``os._exit``, the OOM killer's SIGKILL) is started
again alone, after a backoff that doubles while it keeps dying soon after each
start; the others keep running. Children run in their own process group, so a
Ctrl-C in the terminal reaches only ``serve``, which then stops them in order;
on Linux they also get SIGTERM if ``serve`` itself is killed, so nothing is
left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
FIRST_BACKOFF = 1.0  # seconds before the first restart of a child that died
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that ran this long before dying starts again at the first backoff


@dataclass
class Child:
    """One process ``serve`` runs: its name, its command line and extra environment.

    Children stop in ascending ``stop_order``: producers (0) before the servers
    and workers (1) that take their events.
    """

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stop_order: int = 1
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None  # when a dead child is due to start again

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        """Return the exit code if the process has ended, else None."""
        return self.process.poll() if self.process else None


def manage_py(*args: str) -> list[str]:
    """The command line that runs a management command of this project with this Python."""
    return [sys.executable, str(Path(__file__).resolve().parent.parent / "manage.py"), *args]


def port_problem(host: str, port: int) -> str | None:
    """Return why ``host:port`` cannot be listened on (e.g. already in use), or None if it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc}"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option the web server uses, so a port in TIME_WAIT is not reported as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use (try --port {port + 1})"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``serve`` dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts children, watches them, and stops every one of them."""

    def __init__(self, env: dict[str, str], cwd: Path, say: Callable[[str], None]) -> None:
        self.env = env
        self.cwd = cwd
        self.say = say
        self.children: list[Child] = []
        self.stopping = False

    def start(self, child: Child) -> Child:
        child.process = subprocess.Popen(
            child.args,
            env={**self.env, **child.env},
            cwd=self.cwd,
            process_group=0,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        child.started_at, child.restart_at = time.monotonic(), None
        if child not in self.children:
            self.children.append(child)
        return child

    def request_stop(self, *_: object) -> None:
        """Signal handler: ask the watch loop to stop everything."""
        self.stopping = True

    def dead_child(self) -> Child | None:
        """Return a child that has exited and is not yet due to restart, if any."""
        return next((c for c in self.children if c.exit_code() is not None and c.restart_at is None), None)

    def step(self) -> None:
        """One step of the watch loop: schedule a restart for each newly dead child, start those due."""
        now = time.monotonic()
        for child in self.children:
            if child.exit_code() is None:
                continue
            if child.restart_at is None:
                self._schedule_restart(child, now)
            elif now >= child.restart_at:
                self.start(child)
                child.restarts += 1
                self.say(f"{child.name} restarted (pid {child.pid}; restart {child.restarts})")

    def _schedule_restart(self, child: Child, now: float) -> None:
        """Back off: double the wait while the child dies soon after each start."""
        if now - child.started_at >= STABLE_AFTER:
            child.backoff = FIRST_BACKOFF
        child.restart_at = now + child.backoff
        ended = how_it_ended(child.exit_code())
        self.say(f"{child.name} (pid {child.pid}) {ended}; restarting it in {child.backoff:g}s")
        child.backoff = min(MAX_BACKOFF, child.backoff * 2)

    def watch(self, interval: float = 0.2) -> None:
        """Restart children that die until asked to stop."""
        while not self.stopping:
            self.step()
            time.sleep(interval)

    def restarts(self) -> int:
        return sum(child.restarts for child in self.children)

    def stop_all(self, grace: float) -> None:
        """Stop every child, one ``stop_order`` group after another, each within ``grace`` seconds."""
        for order in sorted({c.stop_order for c in self.children}):
            self._stop_group([c for c in self.children if c.stop_order == order], grace)

    def _stop_group(self, group: list[Child], grace: float) -> None:
        """SIGTERM the group's running children; SIGKILL what is still alive after ``grace`` s."""
        running = [c for c in group if c.exit_code() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} (pid {child.pid}) did not stop within {grace:.0f}s; killing it")
                child.process.kill()
                child.process.wait()
            # Whatever the child started in its process group (a server's own worker processes) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)


def how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited unexpectedly with code {code}"


def describe(children: Sequence[Child]) -> list[str]:
    return [f"  {child.name:<14} pid {child.pid}" for child in children]
