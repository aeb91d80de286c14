"""The relay: committed events to every hub of this process (local mode) or the layer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.test import override_settings

from beacon.fanout import relay
from beacon.fanout.hub import Hub, get_hub

from .test_hub import Recorder

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_an_in_memory_layer_means_local_mode() -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        assert relay.get_layer() is None


async def test_local_mode_hands_events_from_any_thread_to_the_hub_of_each_loop() -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        hub = get_hub()
        sink = Recorder()
        await hub.add("room:5", sink, 0)
        reached = asyncio.Event()
        real_dispatch = hub.dispatch
        threads: list[threading.Thread] = []

        def dispatch(items: Any) -> None:
            threads.append(threading.current_thread())
            real_dispatch(items)
            reached.set()

        hub.dispatch = dispatch  # type: ignore[method-assign]
        try:
            publisher = threading.Thread(target=relay.deliver, args=([("room:5", 1, "f")],))
            publisher.start()
            await reached.wait()
            publisher.join()
            assert sink.frames == [("room:5", "f")]
            assert threads == [threading.current_thread()]  # on the hub's loop, not the publisher's
        finally:
            del hub.dispatch
            await hub.remove("room:5", sink)


async def test_adeliver_in_local_mode_dispatches_on_the_callers_loop() -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        hub = get_hub()
        sink = Recorder()
        await hub.add("room:6", sink, 0)
        try:
            await relay.adeliver([("room:6", None, "typing")])
            while not sink.frames:  # call_soon_threadsafe: the next turn of the loop
                await asyncio.sleep(0)
            assert sink.frames == [("room:6", "typing")]
        finally:
            await hub.remove("room:6", sink)


def test_hubs_without_subscribers_and_hubs_of_closed_loops_are_skipped() -> None:
    loop = asyncio.new_event_loop()
    hub = Hub(loop)
    hub.subscribers["room:7"] = {Recorder()}
    relay.hubs._of[loop] = hub
    loop.close()
    relay.dispatch_everywhere([("room:7", 1, "f")])  # does not raise
    assert hub not in relay.hubs.values()


def test_deliver_never_raises_and_ignores_an_empty_batch() -> None:
    relay.deliver([])
    with override_settings(BEACON={"CHANNEL_LAYER": "no-such-alias"}):
        relay.deliver([("room:1", 1, "f")])  # logged, not raised: the log watcher recovers

