"""A bare ASGI broadcast app: the floor under any Channels app on the same server.

No Django, no Channels: the open sockets' ``send`` callables in a dict, and a publish
endpoint that awaits each one's send in turn. Served by Uvicorn or Daphne (see
``configs.py``), it measures what that server alone costs per handshake, per idle
connection and per send: what Beacon cannot go below on that server. Like the raw
server: connect to ``/?u=N`` to be user ``N``; ``/bench/publish`` runs a
``publishplan`` (``drop=ID`` withholds message ``ID`` from one socket).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from . import publishloop

Send = Any
clients: dict[Send, int] = {}
users: dict[int, set[Send]] = defaultdict(set)


async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def websocket(scope: dict[str, Any], receive: Any, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    user = int(parse_qs(scope["query_string"].decode()).get("u", ["0"])[0])
    clients[send] = user
    users[user].add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        clients.pop(send, None)
        users[user].discard(send)


async def http(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["path"] != "/bench/publish":
        body, status = b"not found", 404
    else:
        query = scope["query_string"].decode()
        answer = await publishloop.publish(
            query, lambda: list(clients), lambda u: users.get(u, ()), send_to
        )
        body, status = json.dumps(answer).encode(), 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def send_to(targets: list[Send], text: str) -> None:
    message = {"type": "websocket.send", "text": text}
    for target in targets:
        await target(message)
