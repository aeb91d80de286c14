"""A client that stops reading owes a bounded number of bytes (``SOCKET_MAX_BYTES``).

A real server process, and a client on a raw socket (a small receive buffer) that
subscribes and then reads nothing while the server publishes far more than the bound
to it. The server must stop sending and close with 4013 — the close frame written
behind what is already queued, without waiting for the stuck sends to drain (on
Uvicorn a ``websocket.close`` waits for the transport to be writable again: the
client used to get the keepalive's 1011 instead, much later). Before the byte bound
neither server closed it: everything published was queued for the socket.
"""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.typing import Origin
from websockets.uri import parse_uri

from beacon.protocol import CloseCode
from tests.servers import Server, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BOUND = 256 * 1024
COUNT, SIZE = 400, 4000  # 1.6 MB published to the socket: six times the bound


class RawClient:
    """A WebSocket client on a blocking socket that reads only when told to."""

    def __init__(self, server: Server, cookie: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", server.port))
        self.proto = ClientProtocol(
            parse_uri(f"{server.ws_url}/ws/"), origin=Origin(server.url), max_size=None
        )
        request = self.proto.connect()
        request.headers["Cookie"] = f"sessionid={cookie}"
        self.proto.send_request(request)
        self.flush()
        self.pending: list = []

    def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, frame: dict) -> None:
        self.proto.send_text(json.dumps(frame).encode())
        self.flush()

    def next_frame(self) -> Frame:
        """The next message (fragments joined) or close frame; pings are skipped."""
        parts: list[Frame] = []
        while True:
            while not self.pending:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed without a close frame")
                self.proto.receive_data(data)
                self.pending += [e for e in self.proto.events_received() if isinstance(e, Frame)]
            frame = self.pending.pop(0)
            if frame.opcode in (Opcode.PING, Opcode.PONG):
                continue
            parts.append(frame)
            if frame.fin:
                data = b"".join(part.data for part in parts)
                return Frame(parts[0].opcode, data)

    def next_json(self) -> dict:
        frame = self.next_frame()
        assert frame.opcode is Opcode.TEXT, frame
        return json.loads(frame.data)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_a_client_that_stops_reading_is_closed_with_4013_past_the_byte_bound(kind):
    user = get_user_model().objects.create_user("stuck", password="x")
    cookie = session_cookie(user)
    server = Server(
        kind=kind,
        DJANGO_SETTINGS_MODULE="tests.doors.slowsettings",
        BEACON_SOCKET_MAX_BYTES=str(BOUND),
        BEACON_LOG_POLL_SECONDS="600",  # the live path alone
    ).start()
    try:
        client = RawClient(server, cookie)
        assert client.next_json()["type"] == "welcome"
        stream = f"user:{user.pk}"
        client.send({"op": "subscribe", "stream": stream, "id": 1})
        assert client.next_json()["type"] == "subscribed"
        # The client reads nothing while the whole flood is published.
        url = f"{server.url}/test/flood?stream={stream}&count={COUNT}&size={SIZE}"
        with urllib.request.urlopen(url, timeout=60) as answer:
            assert json.loads(answer.read())["published"] == COUNT
        received = events = 0
        while (frame := client.next_frame()).opcode is not Opcode.CLOSE:
            received += len(frame.data)
            events += json.loads(frame.data).get("seq") is not None
        assert client.proto.close_rcvd is not None
        assert client.proto.close_rcvd.code == CloseCode.TOO_SLOW
        # What reached the client before the close is about the bound, not the flood.
        assert 0 < events < COUNT, (events, received)
        assert received < 2 * BOUND + 64 * 1024, (events, received)
        client.sock.close()
    finally:
        server.stop()
