"""The hub: one per server process (per event loop), owner of fan-out.

Plain Channels gives every socket a channel and puts one layer message into each
socket's queue. The hub instead joins a stream's group **once per process**, receives
each event once, and offers the already-serialized frame to the local sockets that
subscribe to the stream. Each connection's outbox (``outbox.py``) owns the way out:
an offer sends at once when nothing is pending for that connection, and otherwise
joins its small bounded backlog; either way the hub never waits, so one slow
connection never stalls the others.

The hub also runs:

* the **log watcher** (``logwatch.py``): it dispatches whatever the channel layer did
  not bring (an event published by another process in local mode, or sent while
  Redis was down), within about ``LOG_POLL_SECONDS``, at a cost that follows events
  and subscribes rather than subscribed streams. Sockets drop what they already
  have, so overlap is harmless;
* the **heartbeat**: a ``ping`` frame to every socket each ``HEARTBEAT_SECONDS``, so
  clients notice a dead connection;
* in layer mode, the **receive loop** on the hub's own channel, and the **group
  keeper**: it retries the groups a failed join left out, and re-joins every group
  each ``GROUP_REFRESH_SECONDS`` (channels_redis forgets groups after
  ``group_expiry``, and a restarted Redis forgets them at once). It is a task of its
  own, and each layer call waits at most ``REDIS_TIMEOUT_SECONDS``: a Redis that
  stops answering (paused, or a network that drops packets) delays neither the log
  watcher nor a subscribe by more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Protocol, TypeVar, cast

from .. import metrics
from ..conf import get_config
from ..protocol import PING_FRAME, CloseCode
from ..streams import group_name
from . import relay
from .logwatch import LogWatcher
from .relay import Item, get_layer

log = logging.getLogger("beacon.hub")

GROUP_REFRESH_SECONDS = 60.0

T = TypeVar("T")


class Sink(Protocol):
    """A connection as the hub sees it: a front door's :class:`~.outbox.Outbox`."""

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        """Send or queue a frame without waiting (``stream`` None: for the socket itself)."""

    async def close(self, code: CloseCode) -> None:
        """Close the connection once, with a documented code (shutdown's 4012)."""


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.subscribers: dict[str, set[Sink]] = {}
        self.connections: set[Sink] = set()
        #: Highest seq dispatched (or known to subscribers) per stream.
        self.known: dict[str, int] = {}
        #: Epoch of each stream as the log watcher last saw it: ``known`` is of this epoch.
        self.epochs: dict[str, str] = {}
        self.layer = get_layer()
        self.channel: str | None = None
        #: Streams whose group could not be joined (layer down): retried each poll.
        self.unjoined: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        #: Events from other threads are dispatched in the hub's context, not the
        #: publishing thread's: a socket's writer task started from there inherits it,
        #: and asgiref refuses database calls from a context marked as a sync thread's.
        self.context = contextvars.copy_context()
        self.watcher = LogWatcher(self)

    # -- connections and subscriptions -----------------------------------------------

    async def attach(self, sink: Sink) -> None:
        self.connections.add(sink)
        async with self._start_lock:
            if not self._tasks:
                await self._start()

    async def detach(self, sink: Sink) -> None:
        self.connections.discard(sink)
        for stream in [s for s, sinks in self.subscribers.items() if sink in sinks]:
            await self.remove(stream, sink)
        if not self.connections:
            self._stop()

    async def add(self, stream: str, sink: Sink, seq: int, epoch: str | None = None) -> None:
        """Subscribe a socket that gets the stream's events up to ``seq`` elsewhere (replay)."""
        sinks = self.subscribers.get(stream)
        if sinks is None:
            sinks = self.subscribers[stream] = set()
            # Only a stream's first socket sets where the log watcher starts: a later
            # socket's position says nothing about what the earlier ones were sent.
            self.known[stream] = seq
            if epoch is not None:
                self.epochs[stream] = epoch
            self.watcher.added(stream)
            await self._join(stream)
        sinks.add(sink)

    async def _join(self, stream: str) -> None:
        """Join the stream's group; if the layer is down, retry from the watcher loop.

        Meanwhile the log watcher delivers the stream's events, so a layer outage
        costs latency, not events.
        """
        if self.layer is None or self.channel is None:
            return
        group = group_name(stream)
        try:
            await _bounded(self.layer.group_add(group, self.channel))
            self.unjoined.discard(stream)
        except Exception as exc:
            log.warning("beacon: group_add failed (%r); the log watcher covers it", exc)
            self.unjoined.add(stream)
            # Forget the half-made membership so that the retry really subscribes.
            with contextlib.suppress(Exception):
                await _bounded(self.layer.group_discard(group, self.channel))

    async def remove(self, stream: str, sink: Sink) -> None:
        sinks = self.subscribers.get(stream)
        if sinks is None:
            return
        sinks.discard(sink)
        if not sinks:
            del self.subscribers[stream]
            self.known.pop(stream, None)
            self.epochs.pop(stream, None)
            self.unjoined.discard(stream)
            if self.layer is not None and self.channel is not None:
                try:
                    await _bounded(self.layer.group_discard(group_name(stream), self.channel))
                except Exception as exc:
                    log.warning("beacon: group_discard failed: %s", exc)

    # -- fan-out ------------------------------------------------------------------------

    def dispatch(self, items: Iterable[Item]) -> None:
        """Offer frames to the local subscribers of their streams. Never waits."""
        for stream, seq, frame in items:
            sinks = self.subscribers.get(stream)
            if not sinks:
                continue
            if seq is not None and seq > self.known.get(stream, 0):
                self.known[stream] = seq
                metrics.reached_hub(frame)
            for sink in tuple(sinks):
                sink.offer(stream, seq, frame)

    def broadcast(self, frame: str) -> None:
        """Offer a frame to every connection (heartbeats)."""
        for sink in tuple(self.connections):
            sink.offer(None, None, frame)

    # -- background tasks ------------------------------------------------------------------

    async def _start(self) -> None:
        if self.layer is not None:
            self.channel = await self.layer.new_channel("beacon.hub.")
            for stream in self.subscribers:
                await self._join(stream)
            self._tasks.append(self.loop.create_task(self._receive_loop()))
            self._tasks.append(self.loop.create_task(self._keep_groups()))
        self._tasks.append(self.loop.create_task(self._watch_log()))
        self._tasks.append(self.loop.create_task(self._heartbeat()))

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.channel = None

    async def _receive_loop(self) -> None:
        assert self.layer is not None and self.channel is not None
        channel, backoff = self.channel, 0.1
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("beacon: channel layer receive failed (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            self.dispatch(((message["stream"], message.get("seq"), message["frame"]),))

    async def _watch_log(self) -> None:
        """The log watcher; nothing there waits on the channel layer."""
        await self.watcher.run()

    async def _keep_groups(self) -> None:
        """Retry unjoined groups each poll, re-join all each ``GROUP_REFRESH_SECONDS``."""
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(get_config()["LOG_POLL_SECONDS"])
            try:
                for stream in list(self.unjoined):
                    if stream in self.subscribers:
                        await self._join(stream)
                if time.monotonic() - refreshed > GROUP_REFRESH_SECONDS:
                    refreshed = time.monotonic()
                    for stream in list(self.subscribers):
                        await self._join(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("beacon: group refresh failed: %s", exc)

    async def poll_log(self) -> int:
        """Dispatch events in the log that this hub has not seen; returns how many."""
        return await self.watcher.poll()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(get_config()["HEARTBEAT_SECONDS"])
            self.broadcast(PING_FRAME)


async def _bounded(call: Awaitable[T]) -> T:
    """Await a channel-layer call for at most ``REDIS_TIMEOUT_SECONDS`` (TimeoutError)."""
    return await asyncio.wait_for(call, get_config()["REDIS_TIMEOUT_SECONDS"])


def get_hub() -> Hub:
    """The hub of the running event loop (created on first use, kept by the relay)."""
    return cast(Hub, relay.hubs.get(Hub))


def hubs() -> list[Hub]:
    """The live hubs of this process (for metrics and shutdown)."""
    return cast(list[Hub], relay.hubs.values())
