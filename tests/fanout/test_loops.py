"""PerLoop: one object per event loop, made on first use, gone with its loop."""

from __future__ import annotations

import asyncio
import gc

from beacon.fanout.loops import PerLoop


def test_each_loop_gets_its_own_object_made_once() -> None:
    registry: PerLoop[object] = PerLoop()
    made: list[asyncio.AbstractEventLoop] = []

    def make(loop: asyncio.AbstractEventLoop) -> object:
        made.append(loop)
        return object()

    async def twice() -> tuple[object, object]:
        return registry.get(make), registry.get(make)

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] is first[1] and second[0] is second[1] and first[0] is not second[0]
    assert len(made) == 2


def test_an_object_goes_with_its_loop() -> None:
    registry: PerLoop[object] = PerLoop()

    async def one() -> None:
        registry.get(lambda loop: object())
        assert len(registry.values()) == 1

    asyncio.run(one())
    gc.collect()
    assert registry.items() == []


def test_forget_drops_a_loops_object() -> None:
    registry: PerLoop[str] = PerLoop()
    loop = asyncio.new_event_loop()
    try:
        registry._of[loop] = "hub"
        assert registry.items() == [(loop, "hub")]
        registry.forget(loop)
        registry.forget(loop)  # twice is fine
        assert registry.values() == []
    finally:
        loop.close()
