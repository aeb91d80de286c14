"""Presence through the socket: per user, not per tab (in-memory store, or Redis when
``REDIS_URL`` is set). A socket's own ``join`` is best effort — with the Redis pubsub
layer it can race the process's group subscription — so tests wait for the events about
someone else."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import Client, connect
from .test_room_consumer import enter, next_frame, rest

pytestmark = pytest.mark.django_db(transaction=True)


async def next_about(client: Client, type: str, user: Any) -> dict[str, Any]:
    while True:
        frame = await next_frame(client, type)
        if frame["user"] == user.pk:
            return frame


async def test_presence_counts_users_not_tabs(make_user: Any, make_room: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(bob) as b:
        snapshot = (await enter(b, room))["presence"]
        assert snapshot == [{"user": bob.pk, "name": "bob"}]
        async with connect(alice) as tab1:
            seen_by_alice = (await enter(tab1, room))["presence"]
            assert [m["name"] for m in seen_by_alice] == ["alice", "bob"]
            joined = await next_about(b, "join", alice)
            assert joined["name"] == "alice"
            async with connect(alice) as tab2:
                await enter(tab2, room)
            # alice closed a tab but is still here: no leave for bob.
            assert "leave" not in await rest(b)
        left = await next_about(b, "leave", alice)
        assert (left["name"], "seq" in left) == ("alice", False)


async def test_unsubscribing_leaves_the_room(make_user: Any, make_room: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "lobby")
    async with connect(alice) as a, connect(bob) as b:
        await enter(b, room)
        await enter(a, room)
        await next_about(b, "join", alice)
        await a.send({"op": "unsubscribe", "stream": room.stream})
        await next_about(b, "leave", alice)


async def test_subscribing_again_does_not_make_the_user_leave_and_join(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "lobby")
    async with connect(alice) as a, connect(bob) as b:
        await enter(b, room)
        await enter(a, room)
        await next_about(b, "join", alice)
        for i in range(50):
            await a.send({"op": "subscribe", "stream": room.stream, "id": i})
        for _ in range(50):
            again = await next_frame(a, "subscribed")
            assert again["recovered"] is True
        seen_by_bob = await rest(b)
        assert "join" not in seen_by_bob and "leave" not in seen_by_bob
        assert "presence" not in await rest(a)
