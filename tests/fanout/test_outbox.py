"""The outbox: send now, queue, or drop the connection — for any front door.

The door here is the smallest one there is: two coroutine functions that record what
they were asked to send and how they were asked to close.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from beacon import publish
from beacon.fanout.outbox import Outbox, Track
from beacon.protocol import CloseCode


class Door:
    """Records sends and closes; ``hold()`` makes the next send wait until released."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: list[int] = []
        self.gate: asyncio.Event | None = None
        #: Refuse every send once this many frames were sent (None: never).
        self.fail_after: int | None = None

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    async def send(self, text: str) -> None:
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise RuntimeError("the server refused the frame")
        self.sent.append(text)

    async def close(self, code: int) -> None:
        self.closed.append(code)


def outbox(door: Door, *streams: str, queue_size: int = 8, epoch: str = "") -> Outbox[Track]:
    """Tracks subscribed under ``epoch``: a real subscription knows its stream's epoch, and
    a logged frame of another epoch is a new history (``epoch_changed``), not the next one."""
    box: Outbox[Track] = Outbox(door.send, door.close, queue_size=queue_size, page_size=500)
    for stream in streams:
        box.tracks[stream] = Track(stream=stream, epoch=epoch)
    return box


async def drained(box: Outbox[Any]) -> None:
    """Wait for the writer (and a waiting send) to finish."""
    while box.writer is not None or box.inflight is not None:
        await asyncio.wait([t for t in (box.writer, box.inflight) if t is not None])


async def test_an_offer_with_nothing_pending_is_sent_before_offer_returns() -> None:
    door = Door()
    box = outbox(door, "room:1")
    box.offer("room:1", 1, "one")
    assert door.sent == ["one"] and box.writer is None and box.inflight is None
    assert box.tracks["room:1"].last == 1


async def test_duplicates_and_frames_of_untracked_streams_are_dropped() -> None:
    door = Door()
    box = outbox(door, "room:1")
    box.offer("room:1", 1, "one")
    box.offer("room:1", 1, "one again")
    box.offer("room:2", 1, "not subscribed")
    box.offer("room:2", None, "ephemeral, not subscribed")
    assert door.sent == ["one"]


async def test_frames_for_the_connection_itself_and_ephemeral_ones_pass_the_seq_check() -> None:
    door = Door()
    box = outbox(door, "room:1")
    box.offer(None, None, "ping")
    box.offer("room:1", None, "typing")
    assert door.sent == ["ping", "typing"] and box.tracks["room:1"].last == 0


async def test_a_send_that_waits_makes_later_frames_queue_behind_it_in_order() -> None:
    door = Door()
    box = outbox(door, "room:1")
    release = door.hold()
    box.offer("room:1", 1, "one")
    assert box.inflight is not None and door.sent == []
    box.offer("room:1", 2, "two")
    box.offer(None, None, "ping")
    box.offer("room:1", 3, "three")
    assert box.writer is not None and len(box.backlog or ()) == 3
    release.set()
    await drained(box)
    assert door.sent == ["one", "two", "ping", "three"]
    assert box.backlog is None and box.writer is None


async def test_a_stream_whose_lock_is_held_queues_its_offers_until_released() -> None:
    door = Door()
    box = outbox(door, "room:1")
    track = box.tracks["room:1"]
    async with track.lock:  # a replay in progress
        box.offer("room:1", 1, "one")
        assert door.sent == [] and box.writer is not None
        await door.send("replayed 1")
        track.last = 1
    await drained(box)
    assert door.sent == ["replayed 1"]  # the queued copy of seq 1 was a duplicate


async def test_a_full_backlog_closes_once_with_4013_and_keeps_the_close_task() -> None:
    door = Door()
    box = outbox(door, "room:1", queue_size=2)
    door.hold()  # never released: the client reads nothing
    for seq in range(1, 6):
        box.offer("room:1", seq, f"frame {seq}")
    assert box.closing and box.backlog is None
    assert box.closer is not None  # started with a reference kept
    await box.closer
    assert door.closed == [int(CloseCode.TOO_SLOW)]
    box.offer("room:1", 6, "after the close")
    await box.close(CloseCode.INTERNAL_ERROR)
    assert door.closed == [int(CloseCode.TOO_SLOW)]
    box.stop()


async def closed_within(door: Door, seconds: float = 3) -> list[int]:
    async with asyncio.timeout(seconds):
        while not door.closed:
            await asyncio.sleep(0.02)
    return door.closed


async def test_a_replay_stuck_behind_a_send_closes_with_4013_once_the_send_stalls() -> None:
    """The reader stopped during a replay (or gap fill): the server holds less than the
    byte bound, the rest waits in the log, and no offer comes to reveal it."""
    door = Door()
    box = outbox(door, "room:1")
    box.stall_seconds = 0.1
    track = box.tracks["room:1"]
    door.hold()  # never released
    async with track.lock:
        replay = asyncio.ensure_future(box.send_rows(track, [(1, "one"), (2, "two")], paced=False))
        assert await closed_within(door) == [int(CloseCode.TOO_SLOW)]
    assert box.closing and door.sent == []
    replay.cancel()


async def test_a_waiting_eager_send_with_nothing_behind_closes_with_4013_once_it_stalls() -> None:
    door = Door()
    box = outbox(door, "room:1")
    box.stall_seconds = 0.1
    door.hold()
    box.offer("room:1", 1, "one")
    assert box.inflight is not None
    assert await closed_within(door) == [int(CloseCode.TOO_SLOW)]
    await asyncio.sleep(0)
    assert box.inflight is None  # cancelled


async def test_close_closes_once_and_sends_nothing_after() -> None:
    door = Door()
    box = outbox(door, "room:1")
    await box.close(CloseCode.RATE_LIMITED)
    await box.close(CloseCode.SERVER_RESTART)
    box.offer("room:1", 1, "one")
    assert door.closed == [int(CloseCode.RATE_LIMITED)] and door.sent == []


async def test_a_failing_send_in_the_writer_closes_with_4011() -> None:
    door = Door()
    box = outbox(door, "room:1")
    release = door.hold()
    box.offer("room:1", 1, "one")
    box.offer("room:1", 2, "two")
    door.fail_after = 1  # "one" goes out, "two" (the writer's) is refused
    release.set()
    await drained(box)
    assert door.sent == ["one"]
    assert door.closed == [int(CloseCode.INTERNAL_ERROR)] and box.closing


async def test_a_send_refused_at_once_marks_the_connection_gone_without_closing() -> None:
    door = Door()
    door.fail_after = 0
    box = outbox(door, "room:1")
    box.offer("room:1", 1, "one")
    assert box.closing and door.closed == []  # the server's disconnect follows


async def test_stop_cancels_the_writer_and_drops_the_backlog() -> None:
    door = Door()
    box = outbox(door, "room:1")
    door.hold()
    box.offer("room:1", 1, "one")
    box.offer("room:1", 2, "two")
    writer, inflight = box.writer, box.inflight
    assert writer is not None and inflight is not None
    box.stop()
    await asyncio.wait([writer, inflight])
    assert writer.cancelled() and inflight.cancelled()
    assert box.backlog is None and door.sent == [] and door.closed == []


@pytest.mark.django_db(transaction=True)
async def test_a_gap_is_filled_from_the_log_before_the_frame_that_revealed_it(
    db_call: Any,
) -> None:
    events = [await db_call(publish, "room:9", "message", {"n": n}) for n in (1, 2, 3)]
    door = Door()
    box = outbox(door, "room:9", epoch=events[0].epoch)
    box.offer("room:9", 3, events[2].frame)  # seqs 1 and 2 never came live
    assert door.sent == [] and box.writer is not None
    await drained(box)
    assert door.sent == [e.frame for e in events]
    assert box.tracks["room:9"].last == 3


@pytest.mark.django_db(transaction=True)
async def test_catch_up_replays_the_log_after_the_last_seq_in_pages(db_call: Any) -> None:
    events = [await db_call(publish, "room:8", "message", {"n": n}) for n in range(5)]
    door = Door()
    box: Outbox[Track] = Outbox(door.send, door.close, queue_size=8, page_size=2)
    track = box.tracks["room:8"] = Track(stream="room:8", epoch=events[0].epoch, last=1)
    async with track.lock:
        await box.catch_up(track, None)
    assert door.sent == [e.frame for e in events[1:]] and track.last == 5
