"""The harness's handle on several load-generator processes (``loadgen``).

Socket ``j`` lives in process ``j % processes``; a command goes to every process at
once and the replies are merged. The processes inherit the harness's CPU affinity
(the core the server does not use).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from typing import Any

from . import loadgen
from .stats import Plan, Tally


class Clients:
    def __init__(self, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=loadgen.main, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.count = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def _all(self, command: str, args: list[dict[str, Any]] | dict[str, Any]) -> list[Any]:
        per = args if isinstance(args, list) else [args] * len(self.pipes)
        for pipe, a in zip(self.pipes, per, strict=True):
            pipe.send((command, a))
        replies = [pipe.recv() for pipe in self.pipes]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def connect(
        self,
        url: str,
        origin: str,
        specs: list[loadgen.SocketSpec],
        *,
        concurrency: int = 8,
        welcome: bool = False,
    ) -> dict[str, Any]:
        """Open sockets (``{u}`` in ``url`` becomes the user index); ok/failed counts."""
        n = len(self.pipes)
        shares = [[s for s in specs if s.index % n == w] for w in range(n)]
        replies = self._all(
            "connect",
            [
                {
                    "url": url,
                    "origin": origin,
                    "specs": share,
                    "concurrency": concurrency,
                    "welcome": welcome,
                }
                for share in shares
            ],
        )
        self.count += sum(r["ok"] for r in replies)
        return {
            "ok": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:5],
        }

    def subscribe(self, streams: list[str], *, user_stream: bool = False) -> dict[str, int]:
        replies = self._all("subscribe", {"streams": streams, "user_stream": user_stream})
        return {k: sum(r[k] for r in replies) for k in ("ok", "failed")}

    def storm_start(self, url: str, origin: str, *, resume: bool, jitter: float) -> None:
        """Arm every socket to reconnect once its server goes (reply: ``storm_end``)."""
        for pipe in self.pipes:
            pipe.send(
                ("storm", {"url": url, "origin": origin, "resume": resume, "jitter": jitter,
                           "timeout": 120.0})
            )

    def storm_end(self) -> dict[str, Any]:
        replies = [pipe.recv() for pipe in self.pipes]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return {
            "ok": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:5],
            "last_live": max(r["last_live"] for r in replies),
        }

    def collect(self, plan: Plan, timeout: float) -> tuple[Tally, list[float], float, int]:
        """``(tally, latencies, last arrival time, closed sockets)`` over all processes."""
        replies = self._all("collect", {"plan": plan, "timeout": timeout})
        total = Tally(0, 0, 0, 0)
        latencies: list[float] = []
        for r in replies:
            total += r["tally"]
            latencies.extend(r["latencies"])
        return (
            total,
            latencies,
            max(r["last_arrival"] for r in replies),
            sum(r["closed"] for r in replies),
        )

    def reset(self) -> None:
        self._all("reset", {})

    def drop(self) -> int:
        """Close and forget every socket; the processes stay. Returns how many closed."""
        closed = sum(r["closed"] for r in self._all("drop", {}))
        self.count = 0
        return closed

    def close(self) -> None:
        with contextlib.suppress(EOFError, BrokenPipeError, OSError):
            self._all("close", {})
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
