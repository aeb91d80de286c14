"""A room socket that fails leaves the room's presence at once, not after the TTL."""

from __future__ import annotations

from typing import Any

import pytest

from beacon import presence

from ..conftest import connect
from ..test_teardown import crashed, nothing_left, open_socket, raise_on_next_frame, registered
from .test_presence_consumer import next_about
from .test_room_consumer import enter

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["nothing_left"]  # a fixture, used by name


async def test_a_socket_that_fails_in_a_room_leaves_its_presence_at_once(
    make_user: Any,
    make_room: Any,
    db_call: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    nothing_left: Any,
) -> None:
    # A long TTL: the leave below cannot come from expiry.
    settings.BEACON = {"PRESENCE_TTL_SECONDS": 600}
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(bob) as b:
        await enter(b, room)
        communicator, a = await open_socket(alice)
        await enter(a, room)
        await next_about(b, "join", alice)
        raise_on_next_frame(monkeypatch)
        await a.send({"op": "ping"})
        await crashed(communicator)
        left = await next_about(b, "leave", alice)
        assert left["name"] == "alice"
        members = await presence.members(room.stream)
        assert [name for _, name in members] == ["bob"]
        assert registered() == 1  # bob's socket only
        assert "alice" not in {name for _, name in presence.get_keeper().local.values()}
        monkeypatch.undo()
    nothing_left()
