"""Starting and stopping benchmarked server processes, and poking their publish endpoint.

A server runs under ``taskset -c <core>`` so it has one core to itself; the harness
and its load generators keep to the other core.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .stats import Plan

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE = 0
CLIENT_CORE = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pin_to_clients_core() -> None:
    """Keep this process (and the children it starts) off the server's core."""
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {CLIENT_CORE})


class Process:
    """A server (or helper) process started pinned to a core, its output in a log file."""

    def __init__(
        self, argv: list[str], *, env: dict[str, str], log: Path, core: int | None = SERVER_CORE
    ) -> None:
        self.argv = (["taskset", "-c", str(core)] if core is not None else []) + argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, port: int, timeout: float = 30) -> Process:
        if listening(port):
            raise RuntimeError(f"port {port} is taken")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} exited; see {self.log}")
            if listening(port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.argv} did not listen on {port} within {timeout}s")

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def worker_pid(pid: int, timeout: float = 10) -> int:
    """The process that serves: ``pid`` itself, or its one child (Granian's worker)."""
    deadline = time.monotonic() + timeout
    while True:
        children = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
        # taskset execs the server in place; a forking server has its worker as a child.
        if children or time.monotonic() > deadline:
            return children[0] if children else pid
        time.sleep(0.05)


def publish(
    base_url: str, plan: Plan, *, rate: float = 0, drop: int = -1, timeout: float = 120
) -> dict[str, Any]:
    """Ask a server to publish ``plan`` (see ``publishplan``); returns its JSON answer."""
    query = urllib.parse.urlencode(
        {
            "kind": plan.kind,
            "start": plan.start,
            "count": plan.count,
            "users": plan.users,
            "batch": plan.batch,
            "rate": rate,
            "drop": drop,
        }
    )
    with urllib.request.urlopen(f"{base_url}/bench/publish?{query}", timeout=timeout) as r:
        return json.loads(r.read())
