"""What the harness reads about processes from ``/proc``: CPU seconds and RSS.

Server CPU is ``utime + stime`` of ``/proc/<pid>/stat`` (all threads), read before and
after a phase; its resolution is one clock tick (10 ms), so phases last long enough
for that to be small.
"""

from __future__ import annotations

import os
import resource

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name (field 2) may hold spaces; fields after ')' are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_nofile(want: int = 65536) -> int:
    """Raise this process's open-file limit as far as allowed (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class CpuMeter:
    """CPU seconds and wall time of some processes across a phase."""

    def __init__(self, pids: list[int]) -> None:
        import time

        self.pids = pids
        self._time = time.monotonic
        self.start_wall = self._time()
        self.start_cpu = [cpu_seconds(p) for p in pids]

    def read(self) -> tuple[float, float]:
        """``(cpu seconds summed over the processes, wall seconds)`` since creation."""
        cpu = sum(cpu_seconds(p) - c for p, c in zip(self.pids, self.start_cpu, strict=True))
        return cpu, self._time() - self.start_wall
