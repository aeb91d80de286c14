"""The presence stores (memory and real Redis) keep one contract; the keeper announces."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from beacon.presence import (
    Keeper,
    MemoryPresenceStore,
    PresenceTable,
    RedisPresenceStore,
    snapshot_frame,
    user_json,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    """A clock the test moves by hand: expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryPresenceStore(clock=clock)
        return
    # A prefix of our own: parallel test runs share this Redis.
    redis_store = RedisPresenceStore(REDIS_URL, f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield redis_store
    finally:
        await redis_store.clear()
        await redis_store.close()


@pytest.fixture
def advance(store: Any, clock: Clock) -> Callable[[float], Awaitable[None]]:
    """Let ``seconds`` pass for the store: the memory store's clock, Redis's entries
    (Redis's own clock decides expiry, and it cannot be moved)."""

    async def move(seconds: float) -> None:
        if isinstance(store, RedisPresenceStore):
            await store.age(seconds)
        else:
            clock.now += seconds

    return move


async def test_a_user_is_new_once_however_many_tabs(store: Any) -> None:
    assert await store.add("room:1", "7", "alice", "tab1", 30) is True
    assert await store.add("room:1", "7", "alice", "tab2", 30) is False
    assert await store.add("room:1", "7", "alice", "tab1", 30) is False  # a refresh
    assert await store.members("room:1") == [("7", "alice")]
    assert await store.members("room:2") == []


async def test_a_user_leaves_with_their_last_tab(store: Any) -> None:
    await store.add("room:1", "7", "alice", "tab1", 30)
    await store.add("room:1", "7", "alice", "tab2", 30)
    await store.add("room:1", "8", "bob", "tab3", 30)
    assert await store.remove("room:1", "7", "tab1") is False
    assert await store.remove("room:1", "7", "tab2") is True
    assert await store.remove("room:1", "7", "tab2") is False  # told once
    assert await store.members("room:1") == [("8", "bob")]


async def test_expired_entries_are_swept_and_each_leave_is_reported_once(
    store: Any, advance: Any
) -> None:
    await store.add("room:1", "7", "alice", "dead-tab", 10)
    await store.add("room:1", "8", "bob", "live-tab", 10)
    await store.add("room:2", "7", "alice", "other", 10)
    await advance(6)
    await store.refresh([("room:1", "8", "bob", "live-tab")], 10)
    await advance(6)  # alice's entries expired, bob's was refreshed
    assert sorted(await store.members("room:1")) == [("8", "bob")]
    gone = await store.sweep(["room:1", "room:2"])
    assert sorted(gone) == [("room:1", "7", "alice"), ("room:2", "7", "alice")]
    assert await store.sweep(["room:1", "room:2"]) == []  # a second sweeper finds nothing


async def test_a_dead_tab_does_not_make_a_live_user_leave(store: Any, advance: Any) -> None:
    await store.add("room:1", "7", "alice", "killed-process", 10)
    await advance(6)
    await store.add("room:1", "7", "alice", "live-process", 10)
    await advance(6)
    assert await store.sweep(["room:1"]) == []
    assert await store.members("room:1") == [("7", "alice")]


async def test_a_refresh_after_expiry_reports_the_user_as_new(
    store: Any, advance: Any
) -> None:
    await store.add("room:1", "7", "alice", "tab", 10)
    await advance(11)
    assert await store.refresh([("room:1", "7", "alice", "tab")], 10) == [("room:1", "7", "alice")]
    assert await store.refresh([("room:1", "7", "alice", "tab")], 10) == []


async def test_the_keeper_announces_joins_and_leaves_per_user(clock: Clock) -> None:
    said: list[tuple[str, str, dict[str, Any]]] = []

    async def announce(stream: str, type: str, data: dict[str, Any]) -> None:
        said.append((stream, type, data))

    keeper = Keeper(MemoryPresenceStore(clock=clock), ttl=30, announce=announce)
    present = await keeper.join("room:1", "tab1", 7, "alice")
    await keeper.join("room:1", "tab2", 7, "alice")
    await keeper.join("room:1", "tab3", 8, "bob")
    assert present == [("7", "alice")]
    await keeper.leave("room:1", "tab1")
    await keeper.leave("room:1", "tab2")
    await keeper.leave("room:1", "tab2")  # already gone: nothing more to say
    assert said == [
        ("room:1", "join", {"user": 7, "name": "alice"}),
        ("room:1", "join", {"user": 8, "name": "bob"}),
        ("room:1", "leave", {"user": 7, "name": "alice"}),
    ]
    await keeper.leave("room:1", "tab3")
    assert keeper.task is None  # nothing left to keep alive


async def test_the_keeper_sweeps_users_of_a_dead_process_from_its_own_streams(
    clock: Clock,
) -> None:
    said: list[tuple[str, str, dict[str, Any]]] = []

    async def announce(stream: str, type: str, data: dict[str, Any]) -> None:
        said.append((stream, type, data))

    shared = MemoryPresenceStore(clock=clock)
    survivor = Keeper(shared, ttl=9, announce=announce)
    await survivor.join("room:1", "bob-tab", 8, "bob")
    # Another process's socket, never refreshed again (the process was killed).
    await shared.add("room:1", "7", "alice", "alice-tab", 9)
    clock.now += 6
    await survivor.tick()
    assert said[-1][1] == "join"  # nothing swept yet: bob's own join was the last word
    clock.now += 6
    await survivor.tick()
    assert said[-1] == ("room:1", "leave", {"user": 7, "name": "alice"})
    assert await shared.members("room:1") == [("8", "bob")]
    await survivor.leave("room:1", "bob-tab")


def test_the_table_forgets_a_stream_with_nobody_left() -> None:
    table = PresenceTable()
    table.add("room:1", "7", "alice", "tab", expires=20, now=10)
    assert table.remove("room:1", "7", "tab", now=11) is True
    assert table.expiry == {} and table.names == {}


def test_the_snapshot_frame_lists_members_by_name_with_json_ids() -> None:
    import json

    frame = json.loads(snapshot_frame("room:1", [("8", "bob"), ("7", "Alice")]))
    assert frame["type"] == "presence" and "seq" not in frame
    assert frame["members"] == [{"user": 7, "name": "Alice"}, {"user": 8, "name": "bob"}]
    assert user_json("abc-uuid") == "abc-uuid"


@pytest.mark.redis
async def test_a_process_with_a_skewed_clock_does_not_make_others_leave_and_join(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two processes share one Redis; one's clock is 60 s ahead. Expiry is Redis's clock,
    so its sweeps see the other's entries as live, and nobody leaves or joins again."""
    said: list[tuple[str, str, Any]] = []

    def announcer(who: str) -> Any:
        async def announce(stream: str, type: str, data: dict[str, Any]) -> None:
            said.append((who, type, data["name"]))

        return announce

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    on_time = RedisPresenceStore(REDIS_URL, prefix)
    skewed = RedisPresenceStore(REDIS_URL, prefix, clock=lambda: time.time() + 60)
    a = Keeper(on_time, ttl=30, announce=announcer("a"))
    b = Keeper(skewed, ttl=30, announce=announcer("b"))
    try:
        await a.join("room:1", "alice-tab", 7, "alice")
        await b.join("room:1", "bob-tab", 8, "bob")
        assert said == [("a", "join", "alice"), ("b", "join", "bob")]
        for _ in range(3):  # the keepers' rounds, each refreshing and sweeping
            await b.tick()
            await a.tick()
        assert said == [("a", "join", "alice"), ("b", "join", "bob")]
        assert sorted(await skewed.members("room:1")) == [("7", "alice"), ("8", "bob")]
        assert "clock is +60" in caplog.text  # the skewed process says so
        # The skewed process is killed: its entry expires on Redis's clock, not 60 s late.
        b.local.clear()
        await on_time.age(31)
        await a.store.add("room:1", "7", "alice", "alice-tab", 30)  # alice is refreshed
        await a.tick()
        assert said[-1] == ("a", "leave", "bob")
    finally:
        await on_time.clear()
        for keeper in (a, b):
            keeper.local.clear()
            await keeper._stop()
