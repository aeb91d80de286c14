"""A small real WebSocket client for tests against server processes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class WsClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: Any, path: str = "/ws/", cookie: str | None = None) -> WsClient:
        headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
        ws = await websockets.connect(
            f"{server.ws_url}{path}", origin=server.url, additional_headers=headers
        )
        return cls(ws)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def receive_type(self, *types: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame of one of ``types``, skipping others (welcome, pings)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] in types:
                    return frame

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> WsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
