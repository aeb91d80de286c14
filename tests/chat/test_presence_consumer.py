"""Presence through the socket (embedded mode: in-memory store): per user, not per tab."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import connect
from .test_room_consumer import enter, next_frame

pytestmark = pytest.mark.django_db(transaction=True)


async def test_presence_counts_users_not_tabs(make_user: Any, make_room: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(bob) as b:
        snapshot = (await enter(b, room))["presence"]
        assert snapshot == [{"user": bob.pk, "name": "bob"}]
        assert (await next_frame(b, "join"))["user"] == bob.pk  # bob's own arrival
        async with connect(alice) as tab1:
            seen_by_alice = (await enter(tab1, room))["presence"]
            assert [m["name"] for m in seen_by_alice] == ["alice", "bob"]
            joined = await next_frame(b, "join")
            assert (joined["user"], joined["name"]) == (alice.pk, "alice")
            async with connect(alice) as tab2:
                await enter(tab2, room)
            # alice closed a tab but is still here: nothing for bob.
            assert await b.nothing()
        left = await next_frame(b, "leave")
        assert (left["user"], left["name"], "seq" in left) == (alice.pk, "alice", False)


async def test_unsubscribing_leaves_the_room(make_user: Any, make_room: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "lobby")
    async with connect(alice) as a, connect(bob) as b:
        await enter(b, room)
        await enter(a, room)
        assert (await next_frame(b, "join"))["user"] == bob.pk
        assert (await next_frame(b, "join"))["user"] == alice.pk
        await a.send({"op": "unsubscribe", "stream": room.stream})
        assert (await next_frame(b, "leave"))["user"] == alice.pk
