"""Real server processes for tests: Daphne or Uvicorn on a free loopback port.

The server shares the test database (pytest-django's, committed with
``django_db(transaction=True)``), so users and sessions made in the test are seen by
it. ``session_cookie(user)`` signs a user in for a WebSocket or browser client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(os.environ.get("TEST_OUTPUT", ROOT / "test-output"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_database_url() -> str:
    """A DATABASE_URL naming the database the running tests use."""
    db = settings.DATABASES["default"]
    name = connection.settings_dict["NAME"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{name}"
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server or command process that shares the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DATABASE_URL": test_database_url(),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.update(extra)
    return env


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a separate process against the test database."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=server_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


class Server:
    """A Daphne (default) or Uvicorn process serving ``demo.asgi:application``."""

    def __init__(self, *, kind: str = "daphne", port: int | None = None, **env: str) -> None:
        self.kind = kind
        self.port = port or free_port()
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.log_path = OUTPUT / f"{kind}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "demo.asgi:application",
            ]
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "demo.asgi:application",
        ]

    def start(self, timeout: float = 20) -> Server:
        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is taken: a server left over from earlier?")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=server_env(**self.env), stdout=log, stderr=log
        )
        wait_for_port(self.port, self.process, f"{self.kind} (see {self.log_path})", timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class RedisServer:
    """A redis-server of the test's own, on its own port, in the foreground."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = folder / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert port_is_free(self.port)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, "redis-server")
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def wait_for_port(
    port: int, process: subprocess.Popen[Any], name: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        if not port_is_free(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout}s")


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[Server]:
    server = Server(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def session_cookie(user: Any) -> str:
    """A ``sessionid`` cookie value for ``user`` (a real session row in the database)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value
