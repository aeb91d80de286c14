"""Shared fixtures: users, WebSocket communicators, and the database flavours."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from beacon.routing import websocket_urlpatterns
from beacon.streams import StreamPolicy, register

# Namespaces the tests publish to from code (``publish()`` refuses a namespace with no
# policy); nobody may subscribe to them.
register("news", StreamPolicy)
register("load", StreamPolicy)
register("late", StreamPolicy)
register("order", StreamPolicy)
register("reset", StreamPolicy)


@pytest.fixture
def make_user(django_db_blocker: Any) -> Callable[[str], Any]:
    def make(username: str) -> Any:
        with django_db_blocker.unblock():
            return get_user_model().objects.create_user(username, password="pw-" + username)

    return make


class Client:
    """A WebSocket test client speaking Beacon's JSON frames."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def receive_type(self, *types: str, timeout: float = 3) -> dict[str, Any]:
        """The next frame of one of ``types``, skipping heartbeats."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] in types:
                return frame
            if frame["type"] != "ping":
                raise AssertionError(f"expected {types}, got {frame}")

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def subscribe(self, stream: str, **resume: Any) -> dict[str, Any]:
        await self.send({"op": "subscribe", "stream": stream, **resume})
        return await self.receive_type("subscribed", "error")

    async def output(self) -> dict[str, Any]:
        return await self.communicator.receive_output(timeout=3)


@contextlib.asynccontextmanager
async def connect(user: Any, path: str = "/ws/") -> AsyncIterator[Client]:
    """A connected client for ``user`` (scope injected, no cookies), welcome consumed."""
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    client = Client(communicator)
    try:
        if getattr(user, "is_authenticated", False):
            welcome = await client.receive()
            assert welcome["type"] == "welcome"
        yield client
    finally:
        await communicator.disconnect()


@pytest.fixture
def db_call() -> Callable[..., Any]:
    """Run a synchronous ORM call from async test code."""

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return database_sync_to_async(fn)(*args, **kwargs)

    return call
