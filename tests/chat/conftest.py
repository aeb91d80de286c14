"""Chat fixtures: rooms, members, and a fresh in-memory presence store per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from beacon import presence
from beacon.chat.models import Membership, Room


@pytest.fixture(autouse=True)
def fresh_presence() -> Iterator[None]:
    """Presence entries a failed test left behind must not show up in the next one."""
    presence._memory_store = None
    yield
    presence._memory_store = None


@pytest.fixture
def make_room(django_db_blocker: Any) -> Callable[..., Room]:
    def make(name: str, *, private: bool = False, members: tuple[Any, ...] = ()) -> Room:
        with django_db_blocker.unblock():
            room = Room.objects.create(name=name, is_private=private)
            for user in members:
                Membership.objects.create(room=room, user=user)
            return room

    return make
