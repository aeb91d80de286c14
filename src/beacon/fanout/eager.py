"""Run a coroutine at once, on the caller's stack, as far as it goes without waiting.

The hub hands each event to every subscribed socket. Awaiting each socket's send in
a task of its own (one wake-up per socket per event) cost more than the send itself:
an ASGI server's send almost never waits (Daphne's never does; Uvicorn's waits only
while the client's TCP buffer is full). So a send is stepped once, synchronously, and
only a send that really waits becomes a task, which finishes it later.

On Python 3.12+ ``asyncio.Task(coro, eager_start=True)`` does the same but always
builds a task; this builds one only for the rare send that waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` until it finishes or first waits; None if it finished.

    An exception raised before the first wait propagates, as with ``await``. If it
    waits, the returned task finishes it (and carries any later exception).
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(coro, waiting_on))


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that :func:`start` left suspended, as a task would."""
    try:
        while True:
            if waiting_on is None:  # a bare yield, as in asyncio.sleep(0)
                await asyncio.sleep(0)
            else:  # a future: wait for it without taking its result (the coroutine does)
                waiting_on._asyncio_future_blocking = False
                await asyncio.wait((waiting_on,))
            waiting_on = coro.send(None)
    except StopIteration:
        return
    except BaseException:
        coro.close()  # cancelled while waiting, or the coroutine failed: end it here too
        raise
