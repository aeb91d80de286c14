"""Real Pusher clients for the tests: pusher-js in Node (``tests/js/pusher/driver.mjs``)
driven line by line, and the ``pusher`` server SDK pointed at a test server."""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pusher

from ..servers import ROOT

JS = ROOT / "tests" / "js" / "pusher"
APP_ID, KEY, SECRET = "100001", "demo-key", "demo-secret"
CSRF = "pushertestcsrftokenpushertestcsr"  # 32 characters: a valid CSRF secret


def sdk(port: int, **kwargs: Any) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=APP_ID, key=KEY, secret=SECRET, host="127.0.0.1", port=port, ssl=False, **kwargs
    )


def node_modules() -> Path:
    modules = JS / "node_modules" / "pusher-js"
    if not modules.exists():
        raise RuntimeError(f"run `npm ci --prefix {JS}` first (make test does)")
    return modules


class Driver:
    """One Node process holding any number of named pusher-js clients."""

    def __init__(self, log: Path) -> None:
        node_modules()
        node = shutil.which("node")
        assert node, "node is not installed"
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [node, str(JS / "driver.mjs")],
            cwd=JS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self.ids = itertools.count(1)
        self.replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_event(lambda e: e.get("event") == "ready")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.write(line)
            message = json.loads(line)
            with self.cond:
                if "id" in message and message["id"] in self.replies:
                    self.replies[message["id"]].put(message)
                else:
                    self.events.append(message)
                self.cond.notify_all()

    def call(self, op: str, timeout: float = 10, **args: Any) -> dict[str, Any]:
        ident = next(self.ids)
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        self.replies[ident] = box
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": ident, "op": op, **args}) + "\n")
        self.process.stdin.flush()
        reply = box.get(timeout=timeout)
        if not reply["ok"]:
            raise AssertionError(f"{op} failed: {reply['error']}")
        return reply

    def wait_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events:
                    if match(event):
                        self.events.remove(event)
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"nothing matched in {timeout}s; {self.events[-10:]}")
                self.cond.wait(left)

    def channel_event(
        self, name: str, ev: str, timeout: float = 10, **match: Any
    ) -> dict[str, Any]:
        return self.wait_event(
            lambda e: e.get("event") == "channel"
            and e["name"] == name
            and e["ev"] == ev
            and all(e.get(k) == v for k, v in match.items()),
            timeout,
        )

    def no_event(self, match: Callable[[dict[str, Any]], bool], wait: float = 1.0) -> bool:
        """True if nothing matching arrived within ``wait`` (only for things that must not)."""
        try:
            self.wait_event(match, wait)
        except AssertionError:
            return True
        return False

    def connect(self, name: str, port: int, cookie: str = "", **options: Any) -> str:
        reply = self.call(
            "connect", name=name, port=port, key=KEY, cookie=cookie, csrf=CSRF, **options
        )
        return str(reply["socket_id"])

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
