"""A consumer that fails never leaks: whatever ends it, it leaves the hub, the shutdown
drain's registry, presence and the ``beacon_open_connections`` gauge exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from beacon.doors.websocket import BeaconConsumer, NotificationConsumer
from beacon.fanout import hub
from beacon.identity.control import CONTROL_STREAM
from beacon.routing import websocket_urlpatterns
from beacon.streams import user_stream

from .conftest import Client, connect

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    """What the monkeypatched handler raises."""


def open_gauge() -> float:
    return REGISTRY.get_sample_value("beacon_open_connections") or 0.0


def registered() -> int:
    """Connections the SIGTERM drain would close (it closes each hub's ``connections``)."""
    return sum(len(h.connections) for h in hub.hubs())


def subscribed_sinks() -> int:
    """Sockets subscribed in the hubs (the identity registry's own stream aside)."""
    return sum(
        len(sinks)
        for h in hub.hubs()
        for stream, sinks in h.subscribers.items()
        if stream != CONTROL_STREAM
    )


async def open_socket(user: Any, path: str = "/ws/") -> tuple[WebsocketCommunicator, Client]:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    client = Client(communicator)
    assert (await client.receive())["type"] == "welcome"
    return communicator, client


def raise_on_next_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(self: Any, text_data: Any = None, bytes_data: Any = None) -> None:
        raise Boom("a handler failed")

    monkeypatch.setattr(BeaconConsumer, "receive", boom)


async def crashed(communicator: WebsocketCommunicator) -> None:
    """Wait until the application ended with the handler's exception."""
    with pytest.raises(Boom):
        await communicator.wait(timeout=5)


@pytest.fixture
def nothing_left() -> Any:
    """Pin that a test's sockets left no trace, compared with before it."""
    before = open_gauge()

    def check() -> None:
        assert open_gauge() == before
        assert registered() == 0
        assert subscribed_sinks() == 0

    return check


async def test_a_handler_that_raises_detaches_the_socket(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, nothing_left: Any
) -> None:
    alice = await db_call(make_user, "alice")
    communicator, client = await open_socket(alice)
    assert (await client.subscribe(user_stream(alice)))["type"] == "subscribed"
    assert registered() == 1 and subscribed_sinks() == 1
    raise_on_next_frame(monkeypatch)
    await client.send({"op": "ping"})
    await crashed(communicator)
    nothing_left()


async def test_a_notification_socket_that_fails_after_subscribing_detaches(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, nothing_left: Any
) -> None:
    alice = await db_call(make_user, "alice")
    subscribe = NotificationConsumer.subscribe

    async def subscribe_then_fail(self: Any, frame: Any) -> None:
        await subscribe(self, frame)
        raise Boom("failed after joining the hub")

    monkeypatch.setattr(NotificationConsumer, "subscribe", subscribe_then_fail)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    communicator.scope["user"] = alice
    await communicator.connect()
    await crashed(communicator)
    nothing_left()


async def test_a_cancelled_consumer_detaches_once(
    make_user: Any, db_call: Any, nothing_left: Any
) -> None:
    alice = await db_call(make_user, "alice")
    communicator, client = await open_socket(alice, "/ws/notifications/")
    await client.receive_type("subscribed")
    assert registered() == 1
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    # The server's disconnect after a cancel changes nothing: it was counted once.
    nothing_left()


async def test_a_socket_that_closes_normally_is_uncounted_once(
    make_user: Any, db_call: Any, nothing_left: Any
) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice, "/ws/notifications/") as client:
        await client.receive_type("subscribed")
        assert registered() == 1
    nothing_left()
