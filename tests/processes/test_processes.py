"""Real Daphne processes: the origin check, session auth, frame limits, and Redis between
processes (a socket on process A receives what process B publishes)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from beacon.streams import user_stream

from ..servers import OUTPUT, RedisServer, manage, running, session_cookie
from ..wsclient import WsClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


async def test_cross_origin_handshakes_are_refused_with_403(alice: Any, db_call: Any) -> None:
    cookie = await db_call(session_cookie, alice)
    with running() as server:
        for origin in ("http://evil.example", None):
            with pytest.raises(InvalidStatus) as info:
                await websockets.connect(
                    f"{server.ws_url}/ws/",
                    origin=origin,
                    additional_headers={"Cookie": f"sessionid={cookie}"},
                )
            assert info.value.response.status_code == 403


async def test_a_handshake_without_a_session_is_closed_with_4001() -> None:
    with running() as server:
        client = await WsClient.open(server)
        with pytest.raises(ConnectionClosed) as info:
            await client.receive_type("welcome")
        assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_an_oversized_frame_closes_with_4009_under_daphne(alice: Any, db_call: Any) -> None:
    cookie = await db_call(session_cookie, alice)
    with running() as server:
        client = await WsClient.open(server, cookie=cookie)
        await client.receive_type("welcome")
        await client.ws.send('{"op":"ping","pad":"' + "x" * 70_000 + '"}')
        with pytest.raises(ConnectionClosed) as info:
            await client.receive_type("pong")
        assert info.value.rcvd is not None and info.value.rcvd.code == 4009


def redis_env(url: str = "redis://127.0.0.1:6379/0", **extra: str) -> dict[str, str]:
    return {"REDIS_URL": url, "BEACON_REDIS_PREFIX": "t" + secrets.token_hex(4), **extra}


@pytest.mark.redis
async def test_a_socket_on_process_a_receives_what_process_b_publishes(
    alice: Any, db_call: Any
) -> None:
    cookie = await db_call(session_cookie, alice)
    # A slow log watcher: only the channel layer can bring events within the timeout.
    env = redis_env(BEACON_LOG_POLL_SECONDS="30")
    with running(**env) as a, running(**env) as b:
        async with (
            await WsClient.open(a, cookie=cookie) as on_a,
            await WsClient.open(b, cookie=cookie) as on_b,
        ):
            stream = user_stream(alice)
            for client in (on_a, on_b):
                await client.send({"op": "subscribe", "stream": stream})
                await client.receive_type("subscribed")
            # A third process publishes through Redis.
            await db_call(manage, "beacon_notify", "alice", "hello from a command", **env)
            for client in (on_a, on_b):
                assert (await client.receive_type("notification"))["message"] == (
                    "hello from a command"
                )
            # Process B publishes (a read event) and the socket on A receives it.
            await on_b.send({"op": "read", "stream": stream, "up_to": 1})
            read = await on_a.receive_type("read")
            assert read["unread"] == 0 and read["seq"] == 2


@pytest.fixture
def own_redis() -> Iterator[tuple[str, Any, Any]]:
    """A redis-server of the test's own: ``(url, stop, start)``."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(OUTPUT).start()

    def start() -> None:
        RedisServer(OUTPUT, port=redis.port).start()

    try:
        yield redis.url, lambda: stop_redis_on(redis.port), start
    finally:
        stop_redis_on(redis.port)


def stop_redis_on(port: int) -> None:
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)


@pytest.mark.redis
async def test_events_reach_live_sockets_while_redis_is_down_and_after_it_returns(
    alice: Any, db_call: Any, own_redis: tuple[str, Any, Any]
) -> None:
    url, stop_redis, start_redis = own_redis
    cookie = await db_call(session_cookie, alice)
    env = redis_env(url, BEACON_LOG_POLL_SECONDS="0.5")
    with running(**env) as server:
        async with await WsClient.open(server, cookie=cookie) as client:
            await client.send({"op": "subscribe", "stream": user_stream(alice)})
            await client.receive_type("subscribed")
            await db_call(manage, "beacon_notify", "alice", "before", **env)
            assert (await client.receive_type("notification"))["seq"] == 1

            stop_redis()
            # A socket can still connect and subscribe: its group is joined later.
            late = await WsClient.open(server, cookie=cookie)
            await late.send({"op": "subscribe", "stream": user_stream(alice)})
            assert (await late.receive_type("subscribed"))["seq"] == 1
            # The command commits, its layer send fails, and it still exits cleanly.
            await db_call(manage, "beacon_notify", "alice", "during the outage", **env)
            for socket in (client, late):
                frame = await socket.receive_type("notification")
                assert (frame["message"], frame["seq"]) == ("during the outage", 2)

            start_redis()
            await asyncio.sleep(0.5)
            await db_call(manage, "beacon_notify", "alice", "after", **env)
            for socket in (client, late):
                frame = await socket.receive_type("notification")
                assert (frame["message"], frame["seq"]) == ("after", 3)
            await late.close()
