"""Clients that stop reading: what they cost the server (the ``slow`` phase).

``SOCKETS`` clients on raw sockets (small receive buffers) sign in, subscribe to
``bench:slow`` (a stream of their own) and then read nothing while the server
broadcasts ``COUNT`` events of about ``SIZE`` bytes: each socket is owed
``COUNT * SIZE`` bytes (6 MB). Reported:
the server's RSS growth over the flood, the kernel's TCP memory growth (machine-wide,
so other traffic adds noise), and how each stuck socket ended once the
clients read again — closed with 4013 (``SOCKET_MAX_BYTES``), another close code,
reset, or still open after ``WAIT`` seconds.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.typing import Origin
from websockets.uri import parse_uri

from . import procstat

SOCKETS, COUNT, SIZE = 20, 1500, 4000
#: Only the stuck clients subscribe to it (the harness's other sockets are on bench:all).
STREAM = "bench:slow"
WAIT = 10.0


class StuckClient:
    """A WebSocket client on a blocking socket that reads only when told to."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.proto = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}{path}"),
            origin=Origin(f"http://127.0.0.1:{port}"),
            max_size=None,
        )
        request = self.proto.connect()
        if cookie:
            request.headers["Cookie"] = f"sessionid={cookie}"
        self.proto.send_request(request)
        self.flush()
        self.pending: list[Frame] = []

    def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, frame: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(frame).encode())
        self.flush()

    def next_frame(self) -> Frame:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed without a close frame")
            self.proto.receive_data(data)
            self.pending += [e for e in self.proto.events_received() if isinstance(e, Frame)]
        return self.pending.pop(0)

    def wait_for(self, kind: str) -> None:
        while True:
            frame = self.next_frame()
            if frame.opcode is Opcode.TEXT and json.loads(frame.data).get("type") == kind:
                return

    def drain(self, deadline: float) -> str:
        """Read everything until the close: ``close <code>``, ``reset`` or ``open``."""
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.1, deadline - time.monotonic()))
                if self.next_frame().opcode is Opcode.CLOSE:
                    rcvd = self.proto.close_rcvd
                    return f"close {rcvd.code if rcvd else '?'}"
        except (ConnectionError, OSError) as exc:
            return "open" if isinstance(exc, TimeoutError) else "reset"
        return "open"


def tcp_kernel_bytes() -> int:
    """Memory the kernel holds for all TCP sockets (``/proc/net/sockstat``, machine-wide)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * 4096
    return 0


def run(
    pid: int, base: str, port: int, path: str, cookies: list[str], count: int = COUNT
) -> dict[str, Any]:
    """Flood ``SOCKETS`` stuck clients; the server's RSS growth and how they ended."""
    clients = [StuckClient(port, path, c) for c in cookies[:SOCKETS]]
    for client in clients:
        client.wait_for("welcome")
        client.send({"op": "subscribe", "stream": STREAM, "id": 1})
        client.wait_for("subscribed")
    time.sleep(0.5)
    before, kernel_before = procstat.rss_bytes(pid), tcp_kernel_bytes()
    started = time.monotonic()
    query = f"kind=broadcast&start=900000000&count={count}&pad={SIZE}&stream={STREAM}"
    with urllib.request.urlopen(f"{base}/bench/publish?{query}", timeout=300) as r:
        json.loads(r.read())
    time.sleep(1.0)  # what the flood left behind, not its transient peak
    after, kernel_after = procstat.rss_bytes(pid), tcp_kernel_bytes()
    peak_wall = time.monotonic() - started
    deadline = time.monotonic() + WAIT
    ends: dict[str, int] = {}
    for client in clients:
        end = client.drain(deadline)
        ends[end] = ends.get(end, 0) + 1
        client.sock.close()
    return {
        "slow_rss_growth_mib": (after - before) / 2**20,
        "slow_kernel_growth_mib": (kernel_after - kernel_before) / 2**20,
        "slow_flood_s": peak_wall,
        "slow_ends": ends,
        "slow_closed_4013": ends.get("close 4013", 0),
    }
