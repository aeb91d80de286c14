"""What the harness reads about processes from ``/proc``: CPU seconds and RSS.

Server CPU is ``utime + stime`` of ``/proc/<pid>/stat`` (all threads), read before and
after a phase; its resolution is one clock tick (10 ms), so phases last long enough
for that to be small.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


@contextlib.contextmanager
def py_spy(pid: int, out: str | Path, *, rate: int = 200, gil: bool = False) -> Iterator[None]:
    """Sample ``pid`` with py-spy (raw collapsed stacks to ``out``) while the block runs;
    ``gil``: only the thread holding the GIL."""
    # The virtualenv's py-spy (bench extra), found without the venv on PATH.
    spy_bin = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    argv = [spy_bin, "record", *(["--gil"] if gil else []), "--nonblocking", "-r", str(rate)]
    spy = subprocess.Popen(
        [*argv, "-f", "raw", "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
