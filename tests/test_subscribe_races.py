"""Subscribing at the edges: events committing mid-subscribe, prune under a resume,
a stream's epoch changing under a live subscription, and re-subscribing.

Each race is made deterministic by running the other side (a publish, a prune, a
delete) inside ``_prepare_subscription``'s thread, right after the position read
(before a resume's replay read, which the same call makes), which is exactly the
window the fix closes.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import transaction

from beacon import eventlog, notify
from beacon.doors import websocket as consumers
from beacon.fanout import relay as transport
from beacon.fanout.hub import get_hub
from beacon.models import Stream
from beacon.protocol import event_frame
from beacon.streams import user_stream

from .conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quiet_watcher(settings: Any) -> None:
    """Make the log watcher too slow to matter, so a test sees the live path alone."""
    settings.BEACON = {"LOG_POLL_SECONDS": 60}


def after_position_read(monkeypatch: pytest.MonkeyPatch, action: Any, once: bool = True) -> None:
    """Run ``action()`` in the subscribe's thread just after its position read (once, or
    at every subscribe): the read ``_prepare_subscription`` makes, and nobody else's."""
    real_prepare, real_position = consumers._prepare_subscription, eventlog.position
    done = threading.Event()
    subscribing = threading.local()

    def prepare(*args: Any) -> Any:
        subscribing.now = True
        try:
            return real_prepare(*args)
        finally:
            subscribing.now = False

    def position(*args: Any, **kwargs: Any) -> Any:
        read = real_position(*args, **kwargs)
        if getattr(subscribing, "now", False) and not done.is_set():
            if once:
                done.set()
            action()
        return read

    monkeypatch.setattr(consumers, "_prepare_subscription", prepare)
    monkeypatch.setattr(eventlog, "position", position)


def add_events(stream: str, count: int) -> None:
    with transaction.atomic():
        for i in range(count):
            eventlog.append(stream, "notification", {"message": f"n{i}"})


async def test_a_second_tab_gets_an_event_that_committed_while_it_subscribed(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, quiet_watcher: None
) -> None:
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with connect(alice, "/ws/notifications/") as tab1, connect(alice) as tab2:
        await tab1.receive_type("subscribed")
        await db_call(notify, alice, "before")
        assert (await tab1.receive_type("notification"))["seq"] == 1
        # Committed after tab2 read seq 1, dispatched by the hub before tab2 joined it.
        after_position_read(monkeypatch, lambda: notify(alice, "in the window"))
        subscribed = await tab2.subscribe(stream)
        assert subscribed["seq"] == 1
        assert (await tab1.receive_type("notification"))["seq"] == 2
        frame = await tab2.receive_type("notification")
        assert (frame["seq"], frame["message"]) == (2, "in the window")
        assert await tab2.nothing()


async def test_a_resume_pruned_under_it_says_retention_instead_of_skipping(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BEACON = {"RETENTION_EVENTS": 3, "LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    await db_call(add_events, stream, 10)
    # The position read says the log starts at 1; the prune then keeps 8..10 only.
    after_position_read(monkeypatch, eventlog.prune)
    async with connect(alice) as client:
        subscribed = await client.subscribe(stream, since=2)
        assert (subscribed["recovered"], subscribed.get("reason")) == (False, "retention")
        assert subscribed["seq"] == 10
        assert await client.nothing()


async def test_resumes_racing_prune_never_claim_a_recovery_they_did_not_make(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Every resume is answered while publishes and prunes race: ``recovered: true``
    is always followed by every seq after ``since``, with no gap."""
    settings.BEACON = {"RETENTION_EVENTS": 5, "LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    rounds = iter(range(100))

    def race() -> None:
        added = next(rounds) % 4  # moves the log's start by this much
        if added:
            add_events(stream, added)
        eventlog.prune()

    after_position_read(monkeypatch, race, once=False)
    await db_call(add_events, stream, 6)
    outcomes = set()
    async with connect(alice) as client:
        for round in range(12):
            since = await db_call(lambda: Stream.objects.get(name=stream).first_seq)
            since = max(0, since - 1 + round % 3)
            await client.send({"op": "subscribe", "stream": stream, "since": since, "id": round})
            subscribed = await client.receive_type("subscribed")
            outcomes.add(subscribed["recovered"])
            if subscribed["recovered"]:
                last = await db_call(lambda: Stream.objects.get(name=stream).last_seq)
                frames = [await client.receive_type("notification") for _ in range(last - since)]
                seqs = [frame["seq"] for frame in frames]
                assert seqs == list(range(since + 1, last + 1))
            assert await client.nothing(0.1)
            await client.send({"op": "unsubscribe", "stream": stream})
            await client.receive_type("unsubscribed")
    assert outcomes == {True, False}


async def test_a_new_epoch_under_a_live_subscription_is_announced_not_dropped(
    make_user: Any, db_call: Any, quiet_watcher: None
) -> None:
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with connect(alice) as client:
        first = await client.subscribe(stream)
        for i in range(3):
            await db_call(notify, alice, f"old {i}")
        assert [(await client.receive_type("notification"))["seq"] for _ in range(3)] == [1, 2, 3]
        await db_call(lambda: Stream.objects.filter(name=stream).delete())
        await db_call(notify, alice, "new 1")  # seq 1 of a new epoch
        reset = await client.receive_type("subscribed")
        epoch = await db_call(lambda: Stream.objects.get(name=stream).epoch)
        assert epoch != first["epoch"]
        assert (reset["recovered"], reset["reason"], reset["epoch"], reset["seq"]) == (
            False,
            "epoch_changed",
            epoch,
            1,
        )
        await db_call(notify, alice, "new 2")
        frame = await client.receive_type("notification")
        assert (frame["epoch"], frame["seq"], frame["message"]) == (epoch, 2, "new 2")
        assert await client.nothing()


async def test_the_log_watcher_brings_a_new_epoch_the_layer_lost(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BEACON = {"LOG_POLL_SECONDS": 0.05}
    monkeypatch.setattr(transport, "deliver", lambda items: None)  # the layer loses everything
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with connect(alice) as client:
        await client.subscribe(stream)
        for i in range(3):
            await db_call(notify, alice, f"old {i}")
        assert [(await client.receive_type("notification"))["seq"] for _ in range(3)] == [1, 2, 3]
        await db_call(lambda: Stream.objects.filter(name=stream).delete())
        await db_call(notify, alice, "new 1")
        reset = await client.receive_type("subscribed")
        assert (reset["reason"], reset["seq"]) == ("epoch_changed", 1)
        await db_call(notify, alice, "new 2")
        frame = await client.receive_type("notification")
        assert (frame["epoch"], frame["seq"]) == (reset["epoch"], 2)


async def test_a_late_frame_of_an_old_epoch_is_dropped(
    make_user: Any, db_call: Any, quiet_watcher: None
) -> None:
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with connect(alice) as client:
        await client.subscribe(stream)
        hub = get_hub()
        stale = event_frame(type="notification", stream=stream, seq=7, epoch="0ld", data={}, ts=1)
        hub.dispatch(((stream, 7, stale),))
        assert await client.nothing()
        await db_call(notify, alice, "current")
        assert (await client.receive_type("notification"))["seq"] == 1


async def test_subscribing_again_replays_nothing_twice(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    """20 ``subscribe since=0`` to a 3,000-event stream send its history once."""
    settings.BEACON = {"LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    await db_call(add_events, stream, 3000)
    async with connect(alice) as client:
        for i in range(20):
            await client.send({"op": "subscribe", "stream": stream, "since": 0, "id": i})
        types: dict[str, int] = {}
        seqs = []
        while not await client.nothing(0.5):
            frame = await client.receive()
            types[frame["type"]] = types.get(frame["type"], 0) + 1
            if frame["type"] == "notification":
                seqs.append(frame["seq"])
            else:
                assert frame["type"] in ("subscribed", "ping"), frame
                if frame["type"] == "subscribed":
                    assert frame["recovered"] is True
        assert types["subscribed"] == 20
        assert seqs == list(range(1, 3001))


async def test_a_replay_spends_the_sockets_tokens_by_what_it_sends(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    # A bucket that refills too slowly to matter during the test.
    settings.BEACON = {"RATE_LIMIT_PER_SECOND": 0.001, "RATE_LIMIT_BURST": 100}
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    await db_call(add_events, stream, 3000)
    async with connect(alice) as client:
        await client.subscribe(stream, since=0)
        for _ in range(3000):
            await client.receive_type("notification")
        (consumer,) = get_hub().connections
        # One token for the frame, 30 for the 3,000 events (100 per token).
        assert 68.5 < consumer.bucket.tokens < 69.5  # type: ignore[attr-defined]
