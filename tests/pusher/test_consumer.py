"""The Pusher consumer in process (Channels' communicator, in-memory layer): the seq
check per stream — a gap is filled from the log in order, a duplicate is dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from beacon import eventlog
from beacon.fanout.hub import get_hub
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


class Socket:
    def __init__(self, communicator: WebsocketCommunicator, socket_id: str) -> None:
        self.communicator = communicator
        self.socket_id = socket_id

    @classmethod
    async def open(cls) -> Socket:
        communicator = WebsocketCommunicator(pusher_websocket(_not_found), "/app/k?protocol=7")
        connected, _ = await communicator.connect()
        assert connected
        established = await receive(communicator, "pusher:connection_established")
        return cls(communicator, json.loads(established["data"])["socket_id"])

    async def join(self, channel: str, user_id: str) -> dict[str, Any]:
        from beacon.pusher.signing import channel_auth

        member = json.dumps({"user_id": user_id, "user_info": {}})
        auth = channel_auth("k", "s", self.socket_id, channel, member)
        await self.communicator.send_json_to(
            {
                "event": "pusher:subscribe",
                "data": {"channel": channel, "auth": auth, "channel_data": member},
            }
        )
        while True:
            frame = json.loads(await self.communicator.receive_from(timeout=3))
            if frame["event"] in (
                "pusher_internal:subscription_succeeded",
                "pusher:subscription_error",
            ):
                return frame


async def test_presence_member_limit_counts_users_not_sockets() -> None:
    from django.test import override_settings

    app = {"id": "1", "key": "k", "secret": "s", "max_presence_members": 1}
    with override_settings(BEACON={"PUSHER_APPS": [app]}):
        first, again, other = await Socket.open(), await Socket.open(), await Socket.open()
        try:
            ok = await first.join("presence-full", "7")
            assert ok["event"] == "pusher_internal:subscription_succeeded"
            assert (await again.join("presence-full", "7"))["event"].endswith("succeeded")
            refused = await other.join("presence-full", "8")
            assert refused["event"] == "pusher:subscription_error"
            assert json.loads(refused["data"])["status"] == 403
        finally:
            for socket in (first, again, other):
                await socket.communicator.disconnect()


async def test_a_late_member_announcement_changes_nothing_a_socket_already_knows() -> None:
    """Across processes a join's announcement can arrive after the other socket's
    subscription hash, which already holds the member (seen on Redis): pusher-js would
    count the join twice. Only news is sent: a new member, a known one leaving."""
    from django.test import override_settings

    from beacon.pusher.consumer import _announce_member

    with override_settings(BEACON={"PUSHER_APPS": [{"id": "1", "key": "k", "secret": "s"}]}):
        await _late_members(_announce_member)


async def _late_members(announce_member: Any) -> None:
    sender, other = await Socket.open(), await Socket.open()
    try:
        for socket, user in ((sender, "1"), (other, "2")):
            assert (await socket.join("presence-late", user))["event"].endswith("succeeded")
        assert (await receive(sender.communicator, "pusher_internal:member_added"))["data"]
        key = "pusher:1:presence-late"

        async def announce(kind: str, user_id: str) -> None:
            await announce_member(key, kind, {"name": json.dumps([user_id, {}])})

        await announce("join", "1")  # late: "1" is in other's hash
        await announce("leave", "9")  # never a member here
        assert await other.communicator.receive_nothing(timeout=0.3)
        await announce("join", "3")
        added = await receive(other.communicator, "pusher_internal:member_added")
        assert json.loads(added["data"])["user_id"] == "3"
        await announce("leave", "1")
        removed = await receive(other.communicator, "pusher_internal:member_removed")
        assert json.loads(removed["data"]) == {"user_id": "1"}
    finally:
        await sender.communicator.disconnect()
        await other.communicator.disconnect()


async def test_client_events_are_off_unless_the_app_enables_them() -> None:
    from django.test import override_settings

    for enabled in (False, True):
        app = {"id": "1", "key": "k", "secret": "s", "client_events": enabled}
        with override_settings(BEACON={"PUSHER_APPS": [app]}):
            sender, other = await Socket.open(), await Socket.open()
            try:
                for socket, user in ((sender, "1"), (other, "2")):
                    assert (await socket.join("presence-chat", user))["event"].endswith("succeeded")
                await sender.communicator.send_json_to(
                    {"event": "client-typing", "channel": "presence-chat", "data": {"x": 1}}
                )
                if enabled:
                    got = await receive(other.communicator, "client-typing")
                    assert got["user_id"] == "1" and json.loads(got["data"]) == {"x": 1}
                else:
                    error = await receive(sender.communicator, "pusher:error")
                    assert "not enabled" in error["data"]["message"]
                    assert await other.communicator.receive_nothing(timeout=0.3)
            finally:
                await sender.communicator.disconnect()
                await other.communicator.disconnect()


def test_server_trigger_stores_the_event_with_its_exclusion() -> None:
    from beacon.pusher.server import trigger

    trigger(["orders", "private-orders"], "shipped", {"id": 1}, socket_id="1.2")
    ((_, frame),) = eventlog.events_after("pusher:orders", 0)
    stored = json.loads(frame)
    assert (stored["event"], stored["channel"], stored["exclude"]) == ("shipped", "orders", "1.2")
    assert json.loads(stored["data"]) == {"id": 1}
    assert len(eventlog.events_after("pusher:private-orders", 0)) == 1
    with pytest.raises(ValueError, match="Invalid channel"):
        trigger("bad name", "x", {})
    with pytest.raises(ValueError, match="socket_id"):
        trigger("orders", "x", {}, socket_id="nope")
