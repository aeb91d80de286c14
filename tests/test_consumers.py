"""The ``ws/`` and ``ws/notifications/`` consumers, through WebsocketCommunicator."""

from __future__ import annotations

from typing import Any

import pytest

from beacon import notify
from beacon.streams import user_stream

from .conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_notification_reaches_the_users_socket(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice, "/ws/notifications/") as client:
        subscribed = await client.receive_type("subscribed")
        assert subscribed["stream"] == user_stream(alice)
        await db_call(notify, alice, "hello", url="/x/")
        frame = await client.receive_type("notification")
        assert frame["message"] == "hello"
        assert frame["url"] == "/x/"
        assert frame["seq"] == 1
        assert frame["unread"] == 1
