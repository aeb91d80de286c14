"""The publish loop of the two references without Django: the raw server and the bare
ASGI app. Each passes who its sockets are and how it sends one text to many."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from . import publishplan

Socket = TypeVar("Socket")


async def publish(
    query: str,
    everyone: Callable[[], list[Socket]],
    of_user: Callable[[int], Iterable[Socket]],
    send: Callable[[list[Socket], str], Awaitable[None]],
) -> dict[str, float]:
    """Run the ``publishplan`` in ``query``; ``drop=ID`` withholds ``ID`` from one socket."""
    plan, rate, drop = publishplan.parse_query(query)
    started = time.monotonic()
    for done, (i, user_indexes) in enumerate(publishplan.calls(plan)):
        wait = publishplan.delay(started, done, rate, time.monotonic())
        if wait:
            await asyncio.sleep(wait)
        text = json.dumps({"type": "tick", **publishplan.data(i)})
        if plan.kind == "broadcast":
            targets = everyone()
            if i == drop and targets:
                targets = targets[1:]
        else:
            targets = [s for u in user_indexes for s in of_user(u)]
        await send(targets, text)
        if rate <= 0 and done % 64 == 63:
            await asyncio.sleep(0)  # let writes drain between bursts
    return {"published": plan.count, "elapsed": time.monotonic() - started}
