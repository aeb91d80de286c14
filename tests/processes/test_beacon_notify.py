"""A real Daphne process, a real WebSocket client with a session cookie."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from ..servers import manage, running, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def recv_type(ws: Any, *types: str, timeout: float = 5) -> dict[str, Any]:
    import asyncio

    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] in types:
            return frame


async def test_beacon_notify_from_another_process_reaches_the_socket(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    cookie = await db_call(session_cookie, alice)
    with running() as server:
        async with websockets.connect(
            f"{server.ws_url}/ws/notifications/",
            origin=server.url.replace("http", "http"),
            additional_headers={"Cookie": f"sessionid={cookie}"},
        ) as ws:
            subscribed = await recv_type(ws, "subscribed")
            assert subscribed["recovered"] is True
            await db_call(manage, "beacon_notify", "alice", "from another process")
            frame = await recv_type(ws, "notification")
            assert frame["message"] == "from another process"
            assert frame["seq"] == 1
