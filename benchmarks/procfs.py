"""What the benchmark reads from /proc: CPU time and memory of the processes it watches."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ProcfsError(Exception):
    """A process the benchmark watches is gone or unreadable."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise ProcfsError(f"no {key} in /proc/{pid}/status")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    """Resident memory right now (VmRSS)."""
    return _status_mb(pid, "VmRSS:")


def broker_pid() -> int | None:
    """The local RabbitMQ's Erlang VM, if there is one on this machine."""
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    return pids[0] if pids else None


def cpu_snapshot(watched: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each watched process, by role; a vanished one reads as absent."""
    snapshot: dict[str, float] = {}
    for role, pid in watched.items():
        try:
            snapshot[role] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return snapshot
