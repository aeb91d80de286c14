"""The consumer loop of a socket the hub feeds: the base of every WebSocket door.

Channels' ``AsyncConsumer.__call__`` gives each socket a channel-layer channel and a
second task to wait on the client and the layer at once, and its ``dispatch`` hops to
a thread before every message to close stale database connections. A socket the hub
feeds has no layer channel (the hub fans out, ``fanout/hub.py``), and its database
calls go through ``db.database_call``, which closes stale connections itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer


class HubConsumer(AsyncWebsocketConsumer):
    """Reads the client's messages on one task; :meth:`teardown` runs once, however
    the socket ends (a handler that raised, a cancelled task, a client that vanished)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                message = await receive()
                handler = getattr(self, get_handler_name(message), None)
                if handler is None:
                    raise ValueError(f"No handler for message type {message['type']}")
                await handler(message)
        except StopConsumer:
            pass
        finally:
            # Shielded: a second cancellation must not cut the teardown short.
            await asyncio.shield(self.teardown())

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.teardown()
        await super().websocket_disconnect(message)

    async def teardown(self) -> None:
        """Leave the hub and whatever else the socket joined; must be idempotent."""
        raise NotImplementedError
