"""A raw ``websockets`` broadcast server: the practical limit for Python.

No framework: one set of open connections, ``websockets.broadcast`` writes the same
text to each. Connect to ``/?u=N`` to be user ``N`` (for per-user messages). The
publish endpoint (``publishplan``) is served from ``process_request``. ``drop=ID``
withholds message ``ID`` from one socket: the harness's own test uses it to check
that a lost message is counted.

Run: ``python -m bench.rawserver --port 8001``. Default asyncio event loop, no
compression (the clients offer none), like the Daphne and Uvicorn runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from websockets import broadcast
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from . import publishplan

clients: dict[ServerConnection, int] = {}
users: dict[int, set[ServerConnection]] = defaultdict(set)


async def handler(ws: ServerConnection) -> None:
    query = parse_qs(urlsplit(ws.request.path).query if ws.request else "")
    user = int(query.get("u", ["0"])[0])
    clients[ws] = user
    users[user].add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.pop(ws, None)
        users[user].discard(ws)


async def publish(query: str) -> dict[str, float]:
    plan, rate, drop = publishplan.parse_query(query)
    started = time.monotonic()
    for done, (i, user_indexes) in enumerate(publishplan.calls(plan)):
        wait = publishplan.delay(started, done, rate, time.monotonic())
        if wait:
            await asyncio.sleep(wait)
        text = json.dumps({"type": "tick", **publishplan.data(i)})
        if plan.kind == "broadcast":
            targets = list(clients)
            if i == drop and targets:
                targets = targets[1:]
        else:
            targets = [ws for u in user_indexes for ws in users.get(u, ())]
        broadcast(targets, text)
        if rate <= 0 and done % 64 == 63:
            await asyncio.sleep(0)  # let writes drain between bursts
    return {"published": plan.count, "elapsed": time.monotonic() - started}


async def process_request(conn: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path)
    if path.path != "/bench/publish":
        return None
    result = await publish(path.query)
    return conn.respond(200, json.dumps(result))


async def main(host: str, port: int) -> None:
    async with serve(
        handler,
        host,
        port,
        process_request=process_request,
        compression=None,
        max_queue=None,
        backlog=1024,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
