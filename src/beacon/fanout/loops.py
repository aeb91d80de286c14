"""One object per event loop: the hub and the presence keeper each have one.

A server process runs one event loop (tests run many, one per test). What belongs to
a loop — its hub, its presence keeper — is created on first use from that loop and
forgotten with it (a weak mapping: a closed, collected loop takes its object along).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """A registry of one ``T`` per event loop."""

    def __init__(self) -> None:
        self._of: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, make: Callable[[asyncio.AbstractEventLoop], T]) -> T:
        """The running loop's object, made by ``make(loop)`` on first use."""
        loop = asyncio.get_running_loop()
        item = self._of.get(loop)
        if item is None:
            item = self._of[loop] = make(loop)
        return item

    def items(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        """A snapshot of ``(loop, object)`` pairs; safe from any thread."""
        return list(self._of.items())

    def values(self) -> list[T]:
        return list(self._of.values())

    def forget(self, loop: asyncio.AbstractEventLoop) -> None:
        self._of.pop(loop, None)
