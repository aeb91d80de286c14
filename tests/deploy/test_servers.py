"""Daphne and Uvicorn, each started with its shipped unit's command line: the frame
size limits and graceful SIGTERM under both (they differ; see docs/deployment.md)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from ..servers import session_cookie
from .stack import UnitServer

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

UNITS = {"daphne": "beacon@.service", "uvicorn": "beacon-uvicorn@.service"}
BEACON_LIMIT = 64 * 1024  # BEACON["MAX_FRAME_BYTES"]
SERVER_LIMIT = 128 * 1024  # --websocket-max-message-size / --ws-max-size in the units


@pytest.fixture(params=sorted(UNITS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitServer]:
    # Embedded mode (in-memory layer, the SQLite test database): one process is enough.
    (tmp_path / "metrics").mkdir()
    server = UnitServer(
        UNITS[request.param],
        tmp_path,
        REDIS_URL="",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    ).start()
    try:
        yield server
    finally:
        server.stop()


async def open_socket(server: UnitServer, cookie: str) -> Any:
    ws = await websockets.connect(
        f"{server.ws_url}/ws/",
        origin=server.url,
        additional_headers={"Cookie": f"sessionid={cookie}"},
        max_size=None,
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
    return ws


async def close_code_after_sending(ws: Any, text: str) -> int | None:
    try:
        await ws.send(text)
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed:
        return ws.close_code


async def test_frame_over_beacons_limit_closes_with_4009(
    server: UnitServer, make_user: Any, db_call: Any
) -> None:
    cookie = await db_call(session_cookie, await db_call(make_user, "alice"))
    ws = await open_socket(server, cookie)
    assert await close_code_after_sending(ws, "x" * (BEACON_LIMIT + 1)) == 4009


async def test_frame_over_the_servers_limit_closes_with_1009(
    server: UnitServer, make_user: Any, db_call: Any
) -> None:
    """Uvicorn sends 1009 itself; plain Daphne drops the TCP connection (1006), so the
    Daphne unit runs ``beacon.daphne_server``, which has autobahn send the 1009."""
    cookie = await db_call(session_cookie, await db_call(make_user, "alice"))
    ws = await open_socket(server, cookie)
    assert await close_code_after_sending(ws, "x" * (SERVER_LIMIT + 1)) == 1009


EXIT_AFTER_SIGTERM = {UNITS["daphne"]: 0, UNITS["uvicorn"]: -signal.SIGTERM}


async def test_sigterm_closes_sockets_with_4012_and_the_server_exits(
    server: UnitServer, make_user: Any, db_call: Any
) -> None:
    cookie = await db_call(session_cookie, await db_call(make_user, "alice"))
    sockets = [await open_socket(server, cookie) for _ in range(3)]
    server.process.terminate()
    codes = []
    for ws in sockets:
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed:
            codes.append(ws.close_code)
    assert codes == [4012, 4012, 4012]
    await asyncio.to_thread(server.process.wait, 30)
    # Exits on its own: Daphne with 0; Uvicorn re-raises SIGTERM after its shutdown.
    assert server.process.returncode == EXIT_AFTER_SIGTERM[server.unit]
    text = server.log_path.read_text()
    assert "beacon: drained; 0 connection(s) left" in text
