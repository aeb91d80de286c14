"""The Pusher door's refusals and limits, frame by frame, with a raw WebSocket client
against real Daphne and Uvicorn: every refusal is a documented frame or close code."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from beacon.pusher.signing import channel_auth

from ..servers import Server
from .clients import KEY, SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request: Any, django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with django_db_blocker.unblock():
        s = Server(
            kind=request.param,
            BEACON_HEARTBEAT_SECONDS="0.5",
            BEACON_PUSHER_ACTIVITY_TIMEOUT="1",
            BEACON_REDIS_PREFIX=f"pusher-{uuid.uuid4().hex[:10]}",
        )
        s.start()
    try:
        yield s
    finally:
        s.stop()


async def recv(ws: Any, event: str | None = None, timeout: float = 5) -> dict[str, Any]:
    """The next frame (of ``event``, skipping the server's pings)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["event"] == "pusher:ping" and event != "pusher:ping":
            continue
        if event is None or frame["event"] == event:
            return frame


def data(frame: dict[str, Any]) -> Any:
    value = frame["data"]
    return json.loads(value) if isinstance(value, str) else value


async def open_socket(server: Server, path: str = f"/app/{KEY}?protocol=7") -> Any:
    ws = await websockets.connect(server.ws_url + path)
    established = await recv(ws, "pusher:connection_established")
    ws.socket_id = data(established)["socket_id"]
    assert data(established)["activity_timeout"] == 1
    return ws


async def send(ws: Any, event: str, payload: Any = None, channel: str | None = None) -> None:
    frame: dict[str, Any] = {"event": event, "data": payload if payload is not None else {}}
    if channel is not None:
        frame["channel"] = channel
    await ws.send(json.dumps(frame))


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/app/unknown-key?protocol=7", 4001),
        (f"/app/{KEY}", 4008),
        (f"/app/{KEY}?protocol=", 4008),
        (f"/app/{KEY}?protocol=seven", 4006),
        (f"/app/{KEY}?protocol=4", 4007),
        (f"/app/{KEY}?protocol=8", 4007),
    ],
)
async def test_handshake_refusals(server: Server, path: str, code: int) -> None:
    async with websockets.connect(server.ws_url + path) as ws:
        error = await recv(ws, "pusher:error")
        assert data(error)["code"] == code
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == code


async def test_subscription_refusals(server: Server) -> None:
    ws = await open_socket(server)
    try:
        cases = [
            ({"channel": "bad name"}, 400),
            ({"channel": "x" * 201}, 400),
            ({"channel": "private-encrypted-x", "auth": "k:s"}, 400),
            ({"channel": "private-demo.1", "auth": f"{KEY}:{'0' * 64}"}, 401),
            ({"channel": "private-demo.1"}, 401),
            ({"channel": "presence-demo.1", "auth": "x"}, 400),  # no channel_data
            ({"channel": "#server-to-user-1"}, 403),  # not signed in
        ]
        for payload, status in cases:
            await send(ws, "pusher:subscribe", payload)
            error = await recv(ws, "pusher:subscription_error")
            assert data(error)["status"] == status, payload
        # A valid signature for another socket is refused too.
        forged = channel_auth(KEY, SECRET, "1.1", "private-demo.1")
        await send(ws, "pusher:subscribe", {"channel": "private-demo.1", "auth": forged})
        assert data(await recv(ws, "pusher:subscription_error"))["status"] == 401
        # Presence: user_info over 1 KB is refused, a proper one is in.
        big = json.dumps({"user_id": "9", "user_info": {"x": "y" * 1100}})
        auth = channel_auth(KEY, SECRET, ws.socket_id, "presence-demo.1", big)
        join = {"channel": "presence-demo.1", "auth": auth, "channel_data": big}
        await send(ws, "pusher:subscribe", join)
        assert data(await recv(ws, "pusher:subscription_error"))["status"] == 400
        member = json.dumps({"user_id": 9, "user_info": {"name": "nine"}})
        auth = channel_auth(KEY, SECRET, ws.socket_id, "presence-demo.1", member)
        join = {"channel": "presence-demo.1", "auth": auth, "channel_data": member}
        await send(ws, "pusher:subscribe", join)
        ok = await recv(ws, "pusher_internal:subscription_succeeded")
        assert data(ok)["presence"] == {"ids": ["9"], "hash": {"9": {"name": "nine"}}, "count": 1}
    finally:
        await ws.close()


async def test_bad_frames_get_errors_and_the_socket_stays(server: Server) -> None:
    ws = await open_socket(server)
    try:
        junk = [
            "not json",
            "[]",
            '{"data": {}}',
            '{"event": "pusher:subscribe", "data": 5}',
            '{"event": "nonsense"}',
            json.dumps({"event": "x", "data": "y" * 70_000}),
        ]
        for text in junk:
            await ws.send(text)
            error = await recv(ws, "pusher:error")
            assert data(error)["code"] == 4300 and data(error)["message"]
        await ws.send(b"binary")
        assert data(await recv(ws, "pusher:error"))["code"] == 4300
        await send(ws, "pusher:ping")
        await recv(ws, "pusher:pong")
        # Client events are for private/presence channels the socket is on.
        await send(ws, "client-x", {}, channel="private-demo.nope")
        assert "Subscribe" in data(await recv(ws, "pusher:error"))["message"]
    finally:
        await ws.close()


async def test_a_silent_socket_is_closed_after_the_activity_timeout(server: Server) -> None:
    """activity_timeout 1 s: the server pings every 0.5 s, and closes 4201 when no
    answer (nor anything else) came for activity_timeout plus as much again."""
    ws = await open_socket(server)
    await recv(ws, "pusher:ping")  # heard, not answered
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4201


async def test_an_answering_socket_stays(server: Server) -> None:
    ws = await open_socket(server)
    try:
        for _ in range(6):  # 3 s: past the 2 s after which a silent one is closed
            await recv(ws, "pusher:ping")
            await send(ws, "pusher:pong")
        await send(ws, "pusher:ping")
        await recv(ws, "pusher:pong")
    finally:
        await ws.close()


async def test_sigterm_sends_pusher_clients_away_to_reconnect(django_db_blocker: Any) -> None:
    """Beacon's drain closes its sockets with 4012; pusher-js would read that (40xx) as
    final, so a Pusher socket gets 4100: reconnect after backing off."""
    with django_db_blocker.unblock():
        s = Server()
        s.start()
    try:
        ws = await websockets.connect(s.ws_url + f"/app/{KEY}?protocol=7")
        await recv(ws, "pusher:connection_established")
        await send(ws, "pusher:subscribe", {"channel": "lobby"})
        await recv(ws, "pusher_internal:subscription_succeeded")
        s.process.terminate()  # SIGTERM
        error = await recv(ws, "pusher:error")
        assert data(error)["code"] == 4100
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4100
    finally:
        s.stop()
