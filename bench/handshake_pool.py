"""Server CPU per ``ws/notifications/`` handshake on PostgreSQL, with and without
psycopg's connection pool (``DB_POOL``), side by side in one run.

    python -m bench.handshake_pool      # needs PostgreSQL on 127.0.0.1:5432

Each handshake: origin check, session auth (two queries), ``welcome``, subscribe to
the user's stream (position and unread count). Server CPU is read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

DB_URL = "postgres://postgres@127.0.0.1:5432/beacon_bench_handshake"
USERS, ROUNDS = 50, 6


def setup() -> list[str]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"
    os.environ["DATABASE_URL"] = DB_URL
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE beacon_bench_handshake",
        ],
        capture_output=True,
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests import servers

    call_command("migrate", verbosity=0)
    servers.test_database_url = lambda: DB_URL  # the servers share this database
    User = get_user_model()
    cookies = []
    for i in range(USERS):
        user = User.objects.filter(username=f"hs{i}").first()
        user = user or User.objects.create_user(f"hs{i}", password="x")
        cookies.append(servers.session_cookie(user))
    return cookies


async def measure(server: object, cookies: list[str]) -> float:
    import websockets

    from .procstat import cpu_seconds

    async def handshake(cookie: str) -> object:
        ws = await websockets.connect(
            f"{server.ws_url}/ws/notifications/",  # type: ignore[attr-defined]
            origin=server.url,  # type: ignore[attr-defined]
            additional_headers={"Cookie": f"sessionid={cookie}"},
        )
        while json.loads(await ws.recv())["type"] != "subscribed":
            pass
        return ws

    for cookie in cookies[:5]:  # warm up
        await (await handshake(cookie)).close()  # type: ignore[attr-defined]
    pid = server.process.pid  # type: ignore[attr-defined]
    before, sockets = cpu_seconds(pid), []
    for _ in range(ROUNDS):
        for cookie in cookies:
            sockets.append(await handshake(cookie))
    used = cpu_seconds(pid) - before
    for ws in sockets:
        await ws.close()  # type: ignore[attr-defined]
    return used / len(sockets)


def main() -> None:
    sys.path.insert(0, os.getcwd())
    cookies = setup()
    from tests.servers import Server

    for pool in ("0", "1"):
        server = Server(DB_POOL=pool).start()
        try:
            per = asyncio.run(measure(server, cookies))
        finally:
            server.stop()
        print(f"DB_POOL={pool}: {USERS * ROUNDS} handshakes, {per * 1000:.2f} ms server CPU each")


if __name__ == "__main__":
    main()
