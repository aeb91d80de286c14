"""What a caller holds: subscriptions, the events they yield, and the server's word on them.

A :class:`Subscription` keeps the items the socket handed over in a plain deque, each
numbered in arrival order across the client, and the client rings one :class:`Bell`
whenever any subscription gets one. Iterating takes items one at a time and never loses
one: an item stays in the deque until it is returned, so breaking out of ``async for``
(of a subscription or of :func:`merge`) leaves the rest for the next loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import ClientClosed
from .position import StreamPosition

if TYPE_CHECKING:
    from .connection import Client


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event of a stream, as the server sent it."""

    type: str
    stream: str
    #: ``None`` for ephemeral events (typing, presence): not stored, not replayed.
    seq: int | None
    epoch: str | None
    ts: float | None
    #: The event's own fields: the frame less ``type``, ``stream``, ``seq``, ``epoch``, ``ts``.
    data: dict[str, Any]
    #: The frame's text, byte for byte as the server sent it.
    raw: str

    @property
    def frame(self) -> dict[str, Any]:
        """The whole frame as a dict."""
        return dict(json.loads(self.raw))


@dataclass(frozen=True, kw_only=True)
class Subscribed:
    """The server's word on a subscription: where it starts, and whether it recovered.

    ``recovered`` False means events were missed and cannot be replayed (``reason``:
    ``epoch_changed``, ``retention``, ``ahead_of_stream``): reload what you show from
    the HTTP history; the subscription continues from ``seq`` in ``epoch``.
    """

    stream: str
    epoch: str | None
    seq: int
    recovered: bool
    reason: str | None
    #: The subscribe carried a resume point (a reconnect, or ``since`` given).
    resumed: bool
    state: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Ack:
    """The server stored a published event: its ``seq`` (the first one, for a resend)."""

    stream: str
    seq: int
    client_id: str
    frame: dict[str, Any]


Item = Event | Subscribed

_END: Any = object()


class Bell:
    """Wakes everyone waiting for an item of any subscription of one client."""

    def __init__(self) -> None:
        self.arrivals = itertools.count()
        self._future: asyncio.Future[None] | None = None

    def ring(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._future)  # a cancelled waiter must not cancel the others


class Subscription:
    """One stream followed over the client's socket: ``async for item in subscription``.

    Items are :class:`Event` s in stream order, and a :class:`Subscribed` wherever the
    server could not bring the subscription up to date (``recovered`` False). Iteration
    ends when the subscription or the client is closed, and raises the exception that
    ended it otherwise (:class:`Refused`, :class:`Closed`), after the items that came first.
    """

    def __init__(
        self,
        client: Client,
        stream: str,
        position: StreamPosition,
        on_subscribed: Callable[[Subscribed], object] | None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.position = position
        self.on_subscribed = on_subscribed
        #: Whether the latest ``subscribed`` recovered; ``None`` before the first.
        self.recovered: bool | None = None
        self.reason: str | None = None
        #: The stream-specific ``state`` of the latest ``subscribed`` (e.g. unread count).
        self.state: dict[str, Any] | None = None
        self.status: Literal["pending", "subscribed", "ended"] = "pending"
        #: Durable events dropped because the subscription already had them.
        self.duplicates = 0
        self._items: deque[tuple[int, Any]] = deque()
        self._first: asyncio.Future[Subscribed] = asyncio.get_running_loop().create_future()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.stream} {self.status} {self.position!r}>"

    @property
    def epoch(self) -> str | None:
        return self.position.epoch

    @property
    def last(self) -> int | None:
        """The last seq handed over (queued for iteration): resume from here."""
        return self.position.last

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        while not self._items:
            await self.client.bell.wait()
        return self._take()

    def _take(self) -> Item:
        """The first item; at the end, raise (and stay at the end)."""
        _, item = self._items[0]
        if item is _END:
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        self._items.popleft()
        result: Item = item
        return result

    async def unsubscribe(self) -> None:
        """Stop following the stream; iteration ends after the items already queued."""
        await self.client._unsubscribe(self)

    def _put(self, item: Any) -> None:
        self._items.append((next(self.client.bell.arrivals), item))
        self.client.bell.ring()

    def _end(self, error: BaseException | None) -> None:
        if self.status == "ended":
            return
        self.status = "ended"
        self._error = error
        if not self._first.done():
            self._first.set_exception(ClientClosed() if error is None else error)
            self._first.exception()  # retrieved: no "never retrieved" warning
        self._put(_END)


async def merge(*subs: Subscription) -> AsyncIterator[Item]:
    """The items of several subscriptions of one client, in the order they arrived.

    Each stream keeps its own order (there is none between streams). Ends when all of
    them have ended; raises the first exception that ends one. Nothing is lost by
    breaking out: items not yet yielded stay with their subscription.
    """
    live = list(subs)
    while live:
        ready = [sub for sub in live if sub._items]
        if not ready:
            await live[0].client.bell.wait()
            continue
        sub = min(ready, key=lambda s: s._items[0][0])
        try:
            item = sub._take()
        except StopAsyncIteration:
            live.remove(sub)
            continue
        yield item
