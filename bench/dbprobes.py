"""The database probes as phases of ``python -m bench.run`` (the ``database`` group).

``watch`` (``bench.watchcost``: the log watcher, idle and under traffic), ``prune``
(``bench.prunecost``: ``beacon_prune`` over many streams) and ``publish``
(``bench.publishcost``: ``notify()`` CPU, then ``notify_many`` delivery over Redis to
a hub in another process). Each runs once per harness run, not per configuration,
as a subprocess pinned to the server's core (the Redis receiver of ``publish`` to the
load generators' core), against a database of its own named after the harness's
(``beacon_bench`` → ``beacon_bench_watch`` …), and prints its figures as one JSON
line (``--json``), which is what the harness keeps.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .servers import CLIENT_CORE, ROOT, SERVER_CORE

PROBES = ("watch", "prune", "publish")
#: ``--phases database`` selects every probe.
GROUP = "database"
TIMEOUT = 900.0


@dataclass(frozen=True, slots=True)
class ProbeSizes:
    watch_streams: int
    watch_seconds: float
    watch_rate: float
    prune_streams: int
    prune_events: int
    prune_keep: int
    publish_count: int
    publish_users: int
    publish_total: int

    @classmethod
    def full(cls) -> ProbeSizes:
        return cls(20_000, 10.0, 50.0, 100_000, 5, 2, 300, 1000, 20_000)

    @classmethod
    def quick(cls) -> ProbeSizes:
        return cls(2_000, 3.0, 20.0, 5_000, 5, 2, 100, 100, 1_000)


@dataclass
class ProbeResult:
    name: str
    commands: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"commands": self.commands, "figures": self.figures, "notes": self.notes}

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> ProbeResult:
        return cls(name, list(data["commands"]), dict(data["figures"]), list(data["notes"]))


def selected(phases: str, only: str) -> list[str]:
    """The probes a harness run makes: all of them in a full run; with ``--phases``,
    those it names (``database``: all); with ``--only`` and no ``--phases``, none
    (``--only`` picks server configurations, which the probes are not)."""
    if not phases:
        return [] if only else list(PROBES)
    names = set(phases.split(","))
    if GROUP in names:
        names |= set(PROBES)
    return [p for p in PROBES if p in names]


def database_url(base: str, probe: str) -> str:
    """The probe's own database: the harness's name plus ``_<probe>``."""
    parts = urlsplit(base)
    return parts._replace(path=f"{parts.path.rstrip('/')}_{probe}").geturl()


def argv(probe: str, sizes: ProbeSizes, base_url: str, redis_url: str) -> list[str]:
    """The probe's command line (without the interpreter), ``--json`` included."""
    url = database_url(base_url, probe)
    if probe == "watch":
        args = ["-m", "bench.watchcost", "--url", url, "--streams", str(sizes.watch_streams)]
        args += ["--seconds", f"{sizes.watch_seconds:g}", "--rate", f"{sizes.watch_rate:g}"]
    elif probe == "prune":
        args = ["-m", "bench.prunecost", "--url", url, "--streams", str(sizes.prune_streams)]
        args += ["--events", str(sizes.prune_events), "--keep", str(sizes.prune_keep)]
    elif probe == "publish":
        args = ["-m", "bench.publishcost", "--url", url, "--count", str(sizes.publish_count)]
        args += ["--users", str(sizes.publish_users)]
        if redis_url:
            args += ["--redis", redis_url, "--total", str(sizes.publish_total)]
            args += ["--receiver-cpu", str(CLIENT_CORE)]
    else:
        raise ValueError(f"unknown probe {probe!r}")
    return ["taskset", "-c", str(SERVER_CORE), "python", *args, "--json"]


def shown(command: list[str]) -> str:
    """A command as the docs show it: the host part of each URL elided (the harness's
    Redis listens on a port of the day)."""
    out = []
    for word in command:
        if word.startswith(("postgres://", "redis://")):
            parts = urlsplit(word)
            word = f"{parts.scheme}://…{parts.path}"
        out.append(word)
    return shlex.join(out)


def parse_output(stdout: str) -> dict[str, Any]:
    """The figures a probe printed with ``--json``: its last line that is a JSON object."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise ValueError("the probe printed no JSON figures")


def run(
    probe: str, sizes: ProbeSizes, base_url: str, redis_url: str, log_dir: Path
) -> ProbeResult:
    """Run one probe in a subprocess; its figures, or a note saying why there are none."""
    command = argv(probe, sizes, base_url, redis_url)
    result = ProbeResult(probe, [shown(command)])
    real = [sys.executable if w == "python" else w for w in command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["BEACON_REDIS_PREFIX"] = f"bench-{probe}{os.getpid()}"
    log = log_dir / f"probe-{probe}.log"
    started = time.monotonic()
    try:
        done = subprocess.run(
            real, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        log.write_text(out if isinstance(out, str) else out.decode(errors="replace"))
        result.notes.append(f"timed out after {TIMEOUT:.0f} s")
        return result
    log.write_text(done.stdout + done.stderr)
    result.figures["probe_s"] = time.monotonic() - started
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        result.notes.append(f"exit {done.returncode}: {tail}")
        return result
    try:
        result.figures.update(parse_output(done.stdout))
    except ValueError as exc:
        result.notes.append(str(exc))
    return result
