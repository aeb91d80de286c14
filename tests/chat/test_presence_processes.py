"""Presence across two real Daphne processes sharing Redis, healing after SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import websockets

from beacon.presence import RedisPresenceStore

from ..servers import Server, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.stack]

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Short, so the killed process's users expire within seconds (the default is 45 s).
TTL = "1.5"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"chat-presence-{uuid.uuid4().hex[:10]}"
    yield name
    store = RedisPresenceStore(REDIS_URL, name)

    async def clear() -> None:
        await store.clear()
        await store.close()

    asyncio.run(clear())


@contextlib.contextmanager
def two_servers(prefix: str) -> Iterator[tuple[Server, Server]]:
    env = {
        "REDIS_URL": REDIS_URL,
        "BEACON_REDIS_PREFIX": prefix,
        "BEACON_PRESENCE_TTL_SECONDS": TTL,
    }
    first, second = Server(**env), Server(**env)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


class Socket:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def next(self, *types: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame of one of ``types``, skipping others."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame["type"] in types:
                return frame

    async def next_about(self, type: str, user: int, timeout: float = 10) -> dict[str, Any]:
        """The next ``type`` event about ``user`` (one's own join may come first, or not:
        ephemeral events to a group the process has only just joined are best effort)."""
        while True:
            frame = await self.next(type, timeout=timeout)
            if frame["user"] == user:
                return frame

    async def enter(self, stream: str) -> list[dict[str, Any]]:
        await self.ws.send(json.dumps({"op": "subscribe", "stream": stream}))
        assert (await self.next("subscribed", "error"))["type"] == "subscribed"
        return (await self.next("presence"))["members"]


@contextlib.asynccontextmanager
async def socket(server: Server, cookie: str) -> AsyncIterator[Socket]:
    async with websockets.connect(
        f"{server.ws_url}/ws/",
        origin=server.url,
        additional_headers={"Cookie": f"sessionid={cookie}"},
    ) as ws:
        sock = Socket(ws)
        await sock.next("welcome")
        yield sock


async def test_presence_is_shared_by_processes_and_heals_when_one_is_killed(
    make_user: Any, db_call: Any, prefix: str
) -> None:
    from beacon.chat.models import Room

    users = [await db_call(make_user, name) for name in ("alice", "bob", "carol")]
    _, bob, carol = users
    room = await db_call(Room.objects.create, name="lobby")
    cookies = [await db_call(session_cookie, user) for user in users]
    with two_servers(prefix) as (a, b):
        async with socket(a, cookies[0]) as alice_on_a:
            assert [m["name"] for m in await alice_on_a.enter(room.stream)] == ["alice"]
            async with socket(b, cookies[1]) as bob_on_b:
                # The store is shared: bob (on B) sees alice (on A) at once...
                present = await bob_on_b.enter(room.stream)
                assert [m["name"] for m in present] == ["alice", "bob"]
                # ...and alice hears bob's arrival through the channel layer.
                joined = await alice_on_a.next_about("join", bob.pk)
                assert joined["name"] == "bob"
                # A second tab of alice's, on the other process, is still one alice.
                async with socket(b, cookies[0]) as alice_on_b:
                    names = [m["name"] for m in await alice_on_b.enter(room.stream)]
                    assert names == ["alice", "bob"]
            left = await alice_on_a.next("leave")
            assert (left["user"], left["name"]) == (
                bob.pk,
                "bob",
            )  # alice's tab on B is not a leave

            async with socket(b, cookies[2]) as carol_on_b:
                await carol_on_b.enter(room.stream)
                await alice_on_a.next_about("join", carol.pk)
                b.kill()  # SIGKILL: no disconnect handler runs on B
                left = await alice_on_a.next("leave", timeout=30)
                assert (left["user"], left["name"]) == (carol.pk, "carol")
            # Process A keeps refreshing alice: she is still present for a newcomer.
            async with socket(a, cookies[1]) as bob_on_a:
                names = [m["name"] for m in await bob_on_a.enter(room.stream)]
                assert names == ["alice", "bob"]
