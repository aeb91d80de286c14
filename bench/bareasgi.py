"""A bare ASGI broadcast app: the floor under any Channels app on the same server.

No Django, no Channels: the open sockets' ``send`` callables in a dict, and a publish
endpoint that awaits each one's send in turn. Served by Uvicorn or Daphne (see
``configs.py``), it measures what that server alone costs per handshake, per idle
connection and per send: what Beacon cannot go below on that server. Like the raw
server: connect to ``/?u=N`` to be user ``N``; ``/bench/publish`` runs a
``publishplan`` (``drop=ID`` withholds message ``ID`` from one socket).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from . import publishplan

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
        body, status = json.dumps(await publish(scope["query_string"].decode())).encode(), 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def publish(query: str) -> dict[str, float]:
    plan, rate, drop = publishplan.parse_query(query)
    started = time.monotonic()
    for done, (i, user_indexes) in enumerate(publishplan.calls(plan)):
        wait = publishplan.delay(started, done, rate, time.monotonic())
        if wait:
            await asyncio.sleep(wait)
        message = {
            "type": "websocket.send",
            "text": json.dumps({"type": "tick", **publishplan.data(i)}),
        }
        if plan.kind == "broadcast":
            targets = list(clients)
            if i == drop and targets:
                targets = targets[1:]
        else:
            targets = [s for u in user_indexes for s in users.get(u, ())]
        for target in targets:
            await target(message)
        if rate <= 0 and done % 64 == 63:
            await asyncio.sleep(0)  # let writes drain between bursts
    return {"published": plan.count, "elapsed": time.monotonic() - started}
