"""The configurations compared in one run, and how each one's server is started."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

ALL_PHASES = frozenset(
    {"connect", "broadcast", "sustained", "per_user", "credentials", "rss", "storm", "slow"}
)


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    #: ``raw``, ``asgi`` (bare ASGI app), ``baseline`` or ``beacon``.
    kind: str
    #: ``websockets``, ``daphne``, ``uvicorn`` or ``granian``.
    server: str
    #: ``memory``, ``pubsub``, ``core`` (or ``-``: no layer, raw server and bare ASGI).
    layer: str
    phases: frozenset[str] = ALL_PHASES
    #: A source tree whose ``src/beacon`` the server runs instead of this one's (the
    #: ``-before`` configurations: ``BENCH_BEFORE=/path/to/old/checkout``).
    before: str = ""

    @property
    def label(self) -> str:
        if self.kind == "raw":
            return "raw websockets"
        if self.kind == "asgi":
            return f"bare ASGI {self.server}"
        label = f"{self.kind} {self.server} {self.layer}"
        return f"{label} (before)" if self.before else label

    def argv(self, port: int) -> list[str]:
        py = sys.executable
        if self.kind == "raw":
            return [py, "-m", "bench.rawserver", "--port", str(port)]
        app = {
            "asgi": "bench.bareasgi:app",
            "baseline": "bench.baseline.asgi:application",
            "beacon": "demo.asgi:application",
        }[self.kind]
        if self.server == "granian":
            # One worker (Granian forks it: the harness measures the worker, see
            # ``servers.worker_pid``); asginl: ASGI without lifespan, as Django has none.
            return [
                *(py, "-m", "granian", "--interface", "asginl", "--workers", "1"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                *("--no-access-log", app),
            ]
        if self.server == "uvicorn":
            return [
                *(py, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
                *("--log-level", "warning", "--no-access-log", app),
            ]
        # -v 0: no access log line per connection (uvicorn: --no-access-log).
        return [py, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), app]

    def env(self, database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
        from .servers import ROOT

        path = f"{self.before}/src{os.pathsep}{ROOT}" if self.before else str(ROOT)
        env = {**os.environ, "PYTHONPATH": path, "DATABASE_URL": database_url}
        env.pop("REDIS_URL", None)
        if self.kind == "beacon":
            env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
            # The credentials phase fetches its tickets before it measures: let them
            # live the longest Beacon allows (60 s) rather than the default 30.
            env.setdefault("BEACON_TICKET_SECONDS", "60")
            if self.layer != "memory":
                env.update(REDIS_URL=redis_url, BEACON_LAYER=self.layer)
                env["BEACON_REDIS_PREFIX"] = prefix
        elif self.kind == "baseline":
            env["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"
            env.update(BASELINE_LAYER=self.layer, REDIS_URL=redis_url)
        return env

    def ws_url(self, port: int) -> str:
        path = {
            "raw": "/?u={u}",
            "asgi": "/?u={u}",
            "baseline": "/ws/notifications/",
            "beacon": "/ws/",
        }[self.kind]
        return f"ws://127.0.0.1:{port}{path}"

    @property
    def needs_redis(self) -> bool:
        return self.layer in ("pubsub", "core")


PER_USER_ONLY = frozenset({"connect", "per_user"})

CONFIGS = [
    Config("raw", "raw", "websockets", "-"),
    Config("asgi-daphne", "asgi", "daphne", "-"),
    Config("asgi-uvicorn", "asgi", "uvicorn", "-"),
    Config("asgi-granian", "asgi", "granian", "-"),
    Config("baseline-memory", "baseline", "daphne", "memory"),
    Config("baseline-pubsub", "baseline", "daphne", "pubsub"),
    Config("baseline-core", "baseline", "daphne", "core", PER_USER_ONLY),
    Config("beacon-daphne-memory", "beacon", "daphne", "memory"),
    Config("beacon-daphne-pubsub", "beacon", "daphne", "pubsub"),
    Config("beacon-uvicorn-memory", "beacon", "uvicorn", "memory"),
    Config("beacon-uvicorn-pubsub", "beacon", "uvicorn", "pubsub"),
    Config("beacon-granian-memory", "beacon", "granian", "memory"),
    Config("beacon-daphne-core", "beacon", "daphne", "core", PER_USER_ONLY),
]

if os.environ.get("BENCH_BEFORE"):
    # The same harness, demo and bench app over an older Beacon: before/after in one run.
    CONFIGS += [
        Config(f"{c.name}-before", c.kind, c.server, c.layer, c.phases, os.environ["BENCH_BEFORE"])
        for c in CONFIGS
        if c.kind == "beacon" and c.layer == "memory" and c.server != "granian"
    ]
