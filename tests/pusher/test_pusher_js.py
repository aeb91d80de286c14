"""pusher-js (npm, Node, ws transport) and the ``pusher`` PyPI SDK against real Daphne."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..servers import OUTPUT, Server
from .clients import Driver, sdk

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server(BEACON_HEARTBEAT_SECONDS="1").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def js() -> Iterator[Driver]:
    driver = Driver(OUTPUT / "pusher-js.log")
    try:
        yield driver
    finally:
        driver.close()


def test_public_channel_gets_sdk_trigger(server: Server, js: Driver) -> None:
    socket_id = js.connect("a", server.port)
    assert socket_id.replace(".", "").isdigit()
    assert js.call("subscribe", name="a", channel="orders")["subscribed"]
    sdk(server.port).trigger("orders", "shipped", {"id": 7})
    event = js.channel_event("a", "shipped")
    assert event["data"] == {"id": 7}
