"""A scripted Beacon server on a real loopback socket, for what Beacon itself never does.

Beacon never sends a duplicate or an event of another epoch, but a client must survive
both (docs/protocol.md); these tests make a server that does, one handler per
connection, and record every handshake and frame the client sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

Handler = Callable[[ServerConnection], Awaitable[None]]


class Script:
    """Connection ``n`` runs ``handlers[n]`` (the last one for every later connection)."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = handlers
        self.connections: list[ServerConnection] = []
        self.server: Server | None = None
        self.connected = asyncio.Condition()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws/"

    async def __aenter__(self) -> Script:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        index = len(self.connections)
        self.connections.append(ws)
        async with self.connected:
            self.connected.notify_all()
        await self.handlers[min(index, len(self.handlers) - 1)](ws)

    async def wait_connections(self, count: int) -> None:
        async with self.connected:
            await self.connected.wait_for(lambda: len(self.connections) >= count)


async def send(ws: ServerConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def receive(ws: ServerConnection, op: str | None = None) -> dict[str, Any]:
    """The client's next frame (of ``op``, skipping others)."""
    while True:
        frame: dict[str, Any] = json.loads(await ws.recv())
        if op is None or frame["op"] == op:
            return frame


async def welcome(ws: ServerConnection, heartbeat: float = 25.0) -> None:
    await send(ws, type="welcome", version=1, user=7, heartbeat=heartbeat, max_frame=65536)


async def accept_subscribe(
    ws: ServerConnection, *, epoch: str = "e1", seq: int = 0, **extra: Any
) -> dict[str, Any]:
    """Answer the next subscribe; returns the client's frame."""
    frame = await receive(ws, "subscribe")
    await send(
        ws,
        type="subscribed",
        stream=frame["stream"],
        epoch=epoch,
        seq=seq,
        recovered=extra.pop("recovered", True),
        ref=frame["id"],
        **extra,
    )
    return frame


async def event(
    ws: ServerConnection, seq: int, *, epoch: str = "e1", stream: str = "user:7"
) -> None:
    await send(ws, type="notification", stream=stream, seq=seq, epoch=epoch, ts=1.0, n=seq)


async def hold(ws: ServerConnection) -> None:
    """Keep the connection open until the client goes."""
    await ws.wait_closed()
