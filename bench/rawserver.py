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
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from websockets import broadcast
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from . import publishloop

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


async def send(targets: list[ServerConnection], text: str) -> None:
    broadcast(targets, text)


async def process_request(conn: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path)
    if path.path != "/bench/publish":
        return None
    result = await publishloop.publish(
        path.query, lambda: list(clients), lambda u: users.get(u, ()), send
    )
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
