"""How committed events travel from the publisher to every server process's hub.

Two modes, chosen from the channel layer that ``BEACON["CHANNEL_LAYER"]`` names:

* **local** (no layer, or ``InMemoryChannelLayer``): publisher and sockets share one
  process, so events go straight to this process's hubs, thread-safely. An in-memory
  layer cannot reach another process anyway; publishers elsewhere (``beacon_notify``,
  a Celery worker) are brought in by each hub's log watcher.
* **layer** (channels_redis): one ``group_send`` per event to the stream's group,
  which each process's hub joins once. Sends from synchronous code run in order on
  one long-lived event loop: in a server process, the hub's own loop (a view or a
  ``post_save`` handler there hands its events over and returns); elsewhere (Celery,
  ``beacon_notify``) a loop in a daemon thread. ``async_to_sync`` would make and
  close a loop per call, which is what gives channels_redis its "Event loop is
  closed" errors under Celery; and a second loop thread in a server process would
  contend with the server's loop for the GIL on every send.

Either way delivery is best effort: the database is the source of truth, and what a
send loses the hubs' log watchers and the per-subscription gap check recover.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from .conf import get_config
from .streams import group_name

log = logging.getLogger("beacon.transport")

#: ``(stream, seq or None, frame)``: what a hub hands to its sockets.
Item = tuple[str, int | None, str]

MESSAGE_TYPE = "beacon.event"


def get_layer() -> Any | None:
    """The channel layer that links server processes, or None in local mode."""
    layer = get_channel_layer(get_config()["CHANNEL_LAYER"])
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return None
    return layer


def deliver(items: Sequence[Item]) -> None:
    """Hand committed events (or ephemeral ones) to the hubs; never raises. Any thread."""
    if not items:
        return
    try:
        layer = get_layer()
        if layer is None:
            from .hub import dispatch_everywhere

            dispatch_everywhere(items)
        else:
            _sender().submit(layer, items)
    except Exception:  # delivery is best effort; the log watcher recovers
        log.exception("beacon: could not hand %d event(s) to the transport", len(items))


async def adeliver(items: Sequence[Item]) -> None:
    """Like :func:`deliver`, awaited on the caller's event loop (for ephemeral events)."""
    layer = get_layer()
    if layer is None:
        from .hub import dispatch_everywhere

        dispatch_everywhere(items)
        return
    await _send_all(layer, items)


async def _send_all(layer: Any, items: Sequence[Item]) -> None:
    for stream, seq, frame in items:
        await layer.group_send(
            group_name(stream), {"type": MESSAGE_TYPE, "stream": stream, "seq": seq, "frame": frame}
        )


class _Sender:
    """Sends to the layer in submission order, from one task on one event loop.

    ``loop`` None: a loop of its own in a daemon thread. Otherwise an already running
    loop (a server's); the queue and the task are made there on first use.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.queue: asyncio.Queue[tuple[Any, Sequence[Item]]] | None = None
        self.thread: threading.Thread | None = None
        if loop is not None:
            self.loop = loop
            return
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="beacon-sender", daemon=True
        )
        self.thread.start()
        ready.wait()

    @property
    def alive(self) -> bool:
        if self.thread is not None:
            return self.thread.is_alive()
        return self.loop.is_running() and not self.loop.is_closed()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._drain(ready))

    def _put(self, entry: tuple[Any, Sequence[Item]]) -> None:
        """On the loop: queue ``entry``, starting the drain task on first use."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.loop.create_task(self._drain(None))
        self.queue.put_nowait(entry)

    async def _drain(self, ready: threading.Event | None) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue()
        if ready is not None:
            ready.set()
        queue = self.queue
        while True:
            layer, items = await queue.get()
            try:
                await _send_all(layer, items)
            except Exception as exc:
                log.warning(
                    "beacon: channel layer send failed (%s); log watchers will deliver", exc
                )
            finally:
                queue.task_done()

    def submit(self, layer: Any, items: Sequence[Item]) -> None:
        self.loop.call_soon_threadsafe(self._put, (layer, list(items)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far was sent (or failed). Not on its loop."""

        async def joined() -> None:
            if self.queue is not None:
                await self.queue.join()

        future = asyncio.run_coroutine_threadsafe(joined(), self.loop)
        try:
            future.result(timeout)
            return True
        except TimeoutError:
            return False


_sender_lock = threading.Lock()
_senders: dict[asyncio.AbstractEventLoop | None, _Sender] = {}


def _sender() -> _Sender:
    """The hub's loop's sender in a server process; else the daemon thread's."""
    from .hub import hubs

    loop = next((h.loop for h in hubs() if h.loop.is_running() and not h.loop.is_closed()), None)
    with _sender_lock:
        for key, old in list(_senders.items()):  # senders of loops that are gone
            if key is not loop and not old.alive:
                del _senders[key]
        sender = _senders.get(loop)
        if sender is None or not sender.alive:
            sender = _senders[loop] = _Sender(loop)
        return sender


def flush(timeout: float = 10.0) -> bool:
    """Block until queued layer sends are done; call before a short-lived process exits."""
    return all(sender.flush(timeout) for sender in list(_senders.values()) if sender.alive)
