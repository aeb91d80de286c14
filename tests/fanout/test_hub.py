"""The hub: one per event loop; joins, dispatch, broadcast and the log watcher.

The first test is a regression the browser tests brought to light (a second tab that
subscribed at the wrong moment left the first tab's badge at 0), driven here
directly and deterministically.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from beacon import eventlog, notify
from beacon.fanout import relay
from beacon.fanout.hub import Hub, get_hub, hubs

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A socket as the hub sees it: remembers the seqs offered to it."""

    def __init__(self) -> None:
        self.seqs: list[int | None] = []
        self.frames: list[tuple[str | None, str]] = []

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        self.seqs.append(seq)
        self.frames.append((stream, frame))

    async def close(self, code: Any) -> None:
        pass


async def test_a_second_subscriber_does_not_hide_missed_events_from_the_first(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    stream = f"user:{alice.pk}"
    hub = Hub(asyncio.get_running_loop())  # not registered: only its log watcher feeds it
    first, second = Recorder(), Recorder()
    await hub.add(stream, first, 0)

    # Another process publishes; before this hub's log watcher polls, a second tab
    # subscribes at the stream's new position (and gets seqs 1-2 from its own replay).
    await db_call(notify, alice, "one")
    await db_call(notify, alice, "two")
    position = await db_call(eventlog.position, stream)
    await hub.add(stream, second, position.last_seq)

    await hub.poll_log()
    assert first.seqs == [1, 2]


async def test_dispatch_offers_each_frame_to_that_streams_subscribers_only() -> None:
    hub = Hub(asyncio.get_running_loop())
    one, two = Recorder(), Recorder()
    await hub.add("room:1", one, 0)
    await hub.add("room:2", two, 0)
    hub.dispatch([("room:1", 1, "a"), ("room:2", 1, "b"), ("room:3", 1, "nobody")])
    assert one.frames == [("room:1", "a")] and two.frames == [("room:2", "b")]
    assert hub.known == {"room:1": 1, "room:2": 1}


async def test_broadcast_reaches_every_attached_connection_as_its_own_frame() -> None:
    hub = Hub(asyncio.get_running_loop())
    one, two = Recorder(), Recorder()
    await hub.attach(one)
    await hub.attach(two)
    try:
        hub.broadcast("ping")
        assert one.frames == [(None, "ping")] and two.frames == [(None, "ping")]
    finally:
        await hub.detach(one)
        await hub.detach(two)
    assert not hub._tasks  # the last detach stopped the heartbeat and the watcher


async def test_detach_removes_a_connection_from_every_stream_and_forgets_empty_ones() -> None:
    hub = Hub(asyncio.get_running_loop())
    one, two = Recorder(), Recorder()
    await hub.attach(one)
    await hub.attach(two)
    await hub.add("room:1", one, 4)
    await hub.add("room:1", two, 9)
    await hub.add("room:2", one, 0)
    assert hub.known["room:1"] == 4  # only the first subscriber sets where watching starts
    await hub.detach(one)
    assert hub.subscribers == {"room:1": {two}} and "room:2" not in hub.known
    await hub.remove("room:1", two)
    assert hub.subscribers == {} and hub.known == {}
    await hub.detach(two)


async def test_each_event_loop_has_one_hub_kept_by_the_relay() -> None:
    hub = get_hub()
    assert get_hub() is hub and hub.loop is asyncio.get_running_loop()
    assert hub in hubs() and hub in relay.hubs.values()

    def in_another_loop() -> Hub:
        async def make() -> Hub:
            return get_hub()

        return asyncio.run(make())

    other = await asyncio.to_thread(in_another_loop)
    assert other is not hub
