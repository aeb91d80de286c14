"""The Pusher WebSocket door in the ASGI stack.

``/app/{key}`` takes no session and no origin check: Pusher clients (mobile, server,
other sites) send neither a cookie nor an allowed origin, and nothing on this door
trusts the cookie — private channels carry signatures, sign-in carries a signature.
Wrap the rest of the stack with it::

    "websocket": pusher_websocket(websocket_application()),
"""

from __future__ import annotations

from typing import Any

from .consumer import PusherConsumer


def pusher_websocket(inner: Any) -> Any:
    """An ASGI app sending ``/app/…`` sockets to the Pusher door, the rest to ``inner``."""
    door = PusherConsumer.as_asgi()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and scope.get("path", "").startswith("/app/"):
            return await door(scope, receive, send)
        return await inner(scope, receive, send)

    return app
