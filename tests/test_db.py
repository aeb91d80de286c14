"""``beacon.db.database_call``: database work on a pool of threads, each connection
given back after its call."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.db import connections

from beacon.db import database_call

pytestmark = pytest.mark.django_db(transaction=True)


def _query() -> Any:
    get_user_model().objects.count()
    return connections["default"]  # this thread's own wrapper, not the proxy


async def test_a_call_gives_its_connection_back_even_under_channels_test_communicator() -> None:
    """Channels' communicator patches its own connection clean-up away while it waits;
    a pooled connection kept by a database thread would never return to the pool."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        wrapper = await database_call(_query)()
        await send({"type": "done", "holds": wrapper.connection is not None})

    communicator = ApplicationCommunicator(app, {"type": "test"})
    await communicator.send_input({"type": "go"})
    assert await communicator.receive_output(timeout=5) == {"type": "done", "holds": False}
    await communicator.wait()
