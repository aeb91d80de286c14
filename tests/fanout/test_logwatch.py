"""The log watcher: its idle cost does not grow with subscribed streams, and it misses
nothing — not an event that commits out of id order (PostgreSQL), nor one that
committed between a subscriber's replay and its subscribe."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections, transaction
from django.db.backends.utils import CursorWrapper

from beacon import eventlog, publish
from beacon.fanout.hub import Hub

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 1_200  # the old per-stream poll: 3 queries (500 names each) per poll


class Recorder:
    """A socket as the hub sees it: the seqs offered, and an event per new offer."""

    def __init__(self) -> None:
        self.seqs: list[int | None] = []
        self.offered = asyncio.Event()

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        self.seqs.append(seq)
        self.offered.set()

    async def wait_for(self, seqs: list[int], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while sorted(s for s in set(self.seqs) if s is not None) != seqs:
                self.offered.clear()
                await self.offered.wait()


async def queries_during(work: Callable[[], Awaitable[Any]]) -> int:
    """Statements executed while ``work`` runs, on whichever database thread runs them
    (``db.database_call`` uses a pool of threads, each with its own connection)."""
    count = 0
    real = CursorWrapper.execute

    def counting(self: CursorWrapper, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return real(self, *args, **kwargs)

    CursorWrapper.execute = counting  # type: ignore[method-assign]
    try:
        await work()
    finally:
        CursorWrapper.execute = real  # type: ignore[method-assign]
    return count


async def subscribed_hub(count: int) -> tuple[Hub, dict[str, Recorder]]:
    """A hub that is not registered anywhere: only its log watcher feeds it."""
    hub = Hub(asyncio.get_running_loop())
    recorders = {f"load:{i}": Recorder() for i in range(count)}
    for stream, recorder in recorders.items():
        await hub.add(stream, recorder, 0)
    return hub, recorders


@pytest.fixture
def _sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the id scan is the SQLite watcher; PostgreSQL listens (below)")


@pytest.fixture
def _postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL pointing at PostgreSQL")


@pytest.mark.usefixtures("_sqlite")
async def test_an_idle_poll_is_one_query_whatever_the_number_of_streams(db_call: Any) -> None:
    hub, recorders = await subscribed_hub(STREAMS)
    await hub.poll_log()  # the first poll reads every stream once: the starting point
    idle = await queries_during(lambda: asyncio.gather(hub.poll_log(), hub.poll_log()))
    assert idle == 2

    await db_call(publish, "load:7", "tick", {})
    busy = await queries_during(hub.poll_log)
    assert busy == 2  # the scan, then the one stream's missed events
    assert recorders["load:7"].seqs == [1]


async def test_an_event_committed_between_replay_and_subscribe_is_not_missed(
    db_call: Any,
) -> None:
    hub, _ = await subscribed_hub(1)
    await hub.poll_log()
    # A socket reads where "late:1" stands (nothing yet), then an event commits and a
    # poll passes it while no socket has the stream; then the socket subscribes.
    position = await db_call(eventlog.position, "late:1")
    await db_call(publish, "late:1", "tick", {})
    await hub.poll_log()
    late = Recorder()
    await hub.add("late:1", late, position.last_seq)
    await hub.poll_log()
    assert late.seqs == [1]


# -- PostgreSQL: LISTEN/NOTIFY ------------------------------------------------------------


@pytest.fixture
async def listening(settings: Any) -> Any:
    """Start a hub's watcher task; yield a function that gives the hub once it listens."""
    settings.BEACON = {"LOG_POLL_SECONDS": 0.05}
    tasks: list[asyncio.Task[None]] = []

    async def start(hub: Hub) -> Hub:
        tasks.append(asyncio.create_task(hub.watcher.run()))
        async with asyncio.timeout(10):
            await hub.watcher.listening.wait()
        return hub

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
async def test_an_idle_listener_sends_no_query_whatever_the_number_of_streams(
    listening: Any,
) -> None:
    hub, _ = await subscribed_hub(STREAMS)
    await listening(hub)

    async def rounds() -> None:
        for _ in range(5):
            hub.watcher.ticked.clear()
            await hub.watcher.ticked.wait()

    assert await queries_during(rounds) == 0


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
async def test_the_listener_brings_an_event_whose_id_commits_after_a_later_one(
    listening: Any,
) -> None:
    hub = Hub(asyncio.get_running_loop())
    early, late = Recorder(), Recorder()
    await hub.add("order:early", early, 0)
    await hub.add("order:late", late, 0)
    await listening(hub)
    loop = asyncio.get_running_loop()
    inserted, release = asyncio.Event(), threading.Event()
    ids: dict[str, int] = {}

    def write_early() -> None:
        try:
            with transaction.atomic():
                ids["early"] = publish("order:early", "tick", {}).id
                loop.call_soon_threadsafe(inserted.set)
                release.wait(10)  # commit only after the later id has committed
        finally:
            connections.close_all()

    writer = threading.Thread(target=write_early)
    writer.start()
    await inserted.wait()
    ids["late"] = (await database_sync_to_async(publish)("order:late", "tick", {})).id
    await late.wait_for([1])
    assert early.seqs == []
    release.set()
    await early.wait_for([1])
    await asyncio.to_thread(writer.join, 10)
    assert ids["early"] < ids["late"]


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
async def test_concurrent_writers_reach_the_listener_complete(listening: Any) -> None:
    """Writers that hold their transactions open commit out of id order, in any mix."""
    writers, per_writer = 8, 30
    hub, recorders = await subscribed_hub(writers)
    await listening(hub)
    start = threading.Barrier(writers)

    def write(i: int) -> None:
        import time

        try:
            start.wait()
            for n in range(per_writer):
                with transaction.atomic():
                    publish(f"load:{(i + n) % writers}", "tick", {"writer": i})
                    time.sleep(0.0005 * ((i + n) % 3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
    for stream, recorder in recorders.items():
        total = await db_call_sync(lambda s=stream: eventlog.position(s).last_seq)  # type: ignore[misc]
        await recorder.wait_for(list(range(1, total + 1)))
    assert sum(len(set(r.seqs)) for r in recorders.values()) == writers * per_writer


async def db_call_sync(fn: Callable[[], Any]) -> Any:
    return await database_sync_to_async(fn)()


def recreate(stream: str) -> None:
    """Delete a stream's row (its events go with it); the next publish starts a new epoch."""
    from beacon.models import Stream

    Stream.objects.filter(name=stream).delete()
    publish(stream, "tick", {"history": "new"})


async def test_a_recreated_stream_reaches_its_subscribers_under_its_new_epoch(
    db_call: Any,
) -> None:
    await db_call(publish, "reset:1", "tick", {})
    await db_call(publish, "reset:1", "tick", {})
    position = await db_call(eventlog.position, "reset:1")
    hub = Hub(asyncio.get_running_loop())
    sink = Recorder()
    await hub.add("reset:1", sink, position.last_seq, position.epoch)
    await hub.poll_log()
    await db_call(recreate, "reset:1")
    await hub.poll_log()
    assert sink.seqs == [1]  # seq 1 of the new history, though 2 was known
    assert hub.epochs["reset:1"] != position.epoch


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres")
async def test_the_listener_follows_a_recreated_stream(listening: Any, db_call: Any) -> None:
    await db_call(publish, "reset:2", "tick", {})
    position = await db_call(eventlog.position, "reset:2")
    hub = Hub(asyncio.get_running_loop())
    sink = Recorder()
    await hub.add("reset:2", sink, position.last_seq, position.epoch)
    await listening(hub)
    await db_call(recreate, "reset:2")
    await sink.wait_for([1])
