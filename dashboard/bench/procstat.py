"""What a child process costs, read from ``/proc``: CPU seconds and resident memory."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces) start after the last ")".
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss(pid: int) -> int:
    """Resident set size in bytes (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return 0


class CpuMeter:
    """Cores a process used between ``start()`` and ``cores()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._cpu = 0.0
        self._wall = 0.0

    def start(self) -> None:
        self._cpu, self._wall = cpu_seconds(self.pid), _now()

    def cores(self) -> float:
        wall = _now() - self._wall
        return (cpu_seconds(self.pid) - self._cpu) / wall if wall > 0 else 0.0


def _now() -> float:
    return os.times().elapsed
