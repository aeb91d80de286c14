"""Layer sends from synchronous publishers: on the server's loop where there is one."""

from __future__ import annotations

import asyncio
from typing import Any

from beacon import transport
from beacon.hub import get_hub


class RecordingLayer:
    """Records each ``group_send``: which loop ran it, and the event's seq."""

    def __init__(self) -> None:
        self.sent: list[tuple[asyncio.AbstractEventLoop, int | None]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real send waits on Redis: let others run meanwhile
        self.sent.append((asyncio.get_running_loop(), message["seq"]))


async def test_in_a_server_process_sync_publishers_send_on_the_hubs_loop_in_order() -> None:
    loop = asyncio.get_running_loop()
    get_hub()  # this loop now serves sockets, as a Daphne or Uvicorn process does
    layer = RecordingLayer()

    def publish_from_a_thread() -> bool:  # a sync view or a post_save handler
        sender = transport._sender()
        sender.submit(layer, [("user:1", 1, "{}"), ("user:1", 2, "{}")])
        sender.submit(layer, [("user:1", 3, "{}")])
        return sender.thread is None

    assert await asyncio.to_thread(publish_from_a_thread)
    assert await asyncio.to_thread(transport.flush)
    assert layer.sent == [(loop, 1), (loop, 2), (loop, 3)]


def test_without_a_running_hub_a_daemon_thread_sends() -> None:
    layer = RecordingLayer()
    sender = transport._sender()
    assert sender.thread is not None and sender.thread.is_alive()
    sender.submit(layer, [("user:1", 7, "{}")])
    assert transport.flush()
    assert layer.sent == [(sender.loop, 7)]
