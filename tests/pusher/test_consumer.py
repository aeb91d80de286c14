"""The Pusher consumer in process (Channels' communicator, in-memory layer): the seq
check per stream — a gap is filled from the log in order, a duplicate is dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from beacon import eventlog
from beacon.hub import get_hub
from beacon.pusher.routing import pusher_websocket

pytestmark = pytest.mark.django_db(transaction=True)


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not a Pusher path")


async def receive(communicator: WebsocketCommunicator, event: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await communicator.receive_from(timeout=3))
        if frame["event"] == event:
            return frame


async def test_a_gap_is_filled_from_the_log_and_duplicates_dropped(db_call: Any) -> None:
    communicator = WebsocketCommunicator(pusher_websocket(_not_found), "/app/demo-key?protocol=7")
    connected, _ = await communicator.connect()
    assert connected
    try:
        await receive(communicator, "pusher:connection_established")
        await communicator.send_json_to({"event": "pusher:subscribe", "data": {"channel": "gaps"}})
        await receive(communicator, "pusher_internal:subscription_succeeded")
        # Two events stored, neither delivered (as if the channel layer lost them).
        first = await db_call(eventlog.append, "pusher:gaps", "one", {"n": 1})
        second = await db_call(eventlog.append, "pusher:gaps", "two", {"n": 2})
        hub = get_hub()
        hub.dispatch([("pusher:gaps", second.seq, second.frame)])  # a gap: 1 is missing
        assert (await receive(communicator, "one"))["channel"] == "gaps"
        assert json.loads((await receive(communicator, "two"))["data"]) == {"n": 2}
        hub.dispatch([("pusher:gaps", first.seq, first.frame)])  # late: a duplicate
        hub.dispatch([("pusher:gaps", second.seq, second.frame)])  # the log watcher's overlap
        third = await db_call(eventlog.append, "pusher:gaps", "three", {"n": 3})
        hub.dispatch([("pusher:gaps", third.seq, third.frame)])
        frame = json.loads(await communicator.receive_from(timeout=3))
        while frame["event"] == "pusher:ping":
            frame = json.loads(await communicator.receive_from(timeout=3))
        assert frame["event"] == "three"  # nothing in between
    finally:
        await communicator.disconnect()
