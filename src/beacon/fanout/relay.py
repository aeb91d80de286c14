"""How committed events travel from the publisher to every server process's hub.

Two modes, chosen from the channel layer that ``BEACON["CHANNEL_LAYER"]`` names:

* **local** (no layer, or ``InMemoryChannelLayer``): publisher and sockets share one
  process, so events go straight to this process's hubs, thread-safely. An in-memory
  layer cannot reach another process anyway; publishers elsewhere (``beacon_notify``,
  a Celery worker) are brought in by each hub's log watcher.
* **layer** (channels_redis): one ``group_send`` per event to the stream's group,
  which each process's hub joins once — on the pubsub layer a batch (``notify_many``,
  or a burst of publishes queued meanwhile) goes as one Redis pipeline instead.
  Sends from synchronous code run on one long-lived event loop in a daemon thread,
  in order. ``async_to_sync`` would make and close a loop per call, which is what
  gives channels_redis its "Event loop is closed" errors under Celery.

Either way delivery is best effort: the database is the source of truth, and what a
send loses the hubs' log watchers and the per-subscription gap check recover. So a
send waits at most ``REDIS_TIMEOUT_SECONDS``: a Redis that stops answering must not
hold channels_redis's per-connection lock (which a hub's group join waits for too).
After a failed send the sender thread drops what is submitted for that long, rather
than queue minutes of sends that would each wait in turn.

The relay keeps the registry of this process's hubs (one per event loop, see
``hub.get_hub``), which local mode dispatches to: it knows a hub only as something
with ``subscribers``, a ``context`` and a ``dispatch``, so it imports nothing above it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Iterable, Sequence
from contextvars import Context
from typing import Any, Protocol

from channels.layers import InMemoryChannelLayer, get_channel_layer

from ..conf import get_config
from ..streams import group_name
from .loops import PerLoop

log = logging.getLogger("beacon.transport")

#: ``(stream, seq or None, frame)``: what a hub hands to its sockets.
Item = tuple[str, int | None, str]

MESSAGE_TYPE = "beacon.event"


class LocalHub(Protocol):
    """A hub as local mode sees it."""

    subscribers: dict[str, Any]
    context: Context

    def dispatch(self, items: Iterable[Item]) -> None: ...


#: The hub of each event loop of this process.
hubs: PerLoop[LocalHub] = PerLoop()


def dispatch_everywhere(items: Sequence[Item]) -> None:
    """Local mode: hand events to every hub in this process, from any thread."""
    for loop, hub in hubs.items():
        if not hub.subscribers:
            continue
        try:
            loop.call_soon_threadsafe(hub.dispatch, items, context=hub.context)
        except RuntimeError:  # that loop is closed
            hubs.forget(loop)


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
            dispatch_everywhere(items)
        else:
            _sender().submit(layer, items)
    except Exception:  # delivery is best effort; the log watcher recovers
        log.exception("beacon: could not hand %d event(s) to the transport", len(items))


async def adeliver(items: Sequence[Item]) -> None:
    """Like :func:`deliver`, awaited on the caller's event loop (for ephemeral events).

    Best effort like them: a layer that fails or does not answer in time is logged.
    """
    layer = get_layer()
    if layer is None:
        dispatch_everywhere(items)
        return
    try:
        await _send_all(layer, items)
    except Exception as exc:
        log.warning("beacon: channel layer send failed (%r); ephemeral event dropped", exc)


async def _send_all(layer: Any, items: Sequence[Item]) -> None:
    timeout = get_config()["REDIS_TIMEOUT_SECONDS"]
    if len(items) > 1 and _pipelines(layer):
        await _publish_pipelined(layer, items, timeout)
        return
    for stream, seq, frame in items:
        message = {"type": MESSAGE_TYPE, "stream": stream, "seq": seq, "frame": frame}
        await asyncio.wait_for(layer.group_send(group_name(stream), message), timeout)


#: Messages per Redis pipeline (each waits at most ``REDIS_TIMEOUT_SECONDS``).
PIPELINE_SIZE = 1000


def _pipelines(layer: Any) -> bool:
    """Whether ``layer`` is channels_redis's pubsub layer, whose internals we use.

    Its ``group_send`` is one ``PUBLISH`` and one round trip per event, under a lock
    per shard, so a 1,000-user ``notify_many`` took 1,000 round trips in turn and the
    delivery rate trailed the write rate. A batch is sent instead as one pipeline per
    shard, built with the layer's own channel naming, sharding and serializer
    (channels_redis 4.x, pinned in ``pyproject.toml``); any other layer, or other
    internals, gets one ``group_send`` per event.
    """
    try:
        from channels_redis.pubsub import (  # type: ignore[import-untyped]
            RedisPubSubChannelLayer,
            RedisSingleShardConnection,
        )
    except ImportError:
        return False
    if not isinstance(layer, RedisPubSubChannelLayer):
        return False
    loop_layer = layer._get_layer()
    return hasattr(RedisSingleShardConnection, "_ensure_redis") and all(
        hasattr(loop_layer, n) for n in ("_get_group_channel_name", "_get_shard")
    )


async def _publish_pipelined(layer: Any, items: Sequence[Item], timeout: float) -> None:
    loop_layer = layer._get_layer()
    shards: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
    for stream, seq, frame in items:
        channel = loop_layer._get_group_channel_name(group_name(stream))
        shard = loop_layer._get_shard(channel)
        message = {"type": MESSAGE_TYPE, "stream": stream, "seq": seq, "frame": frame}
        shards.setdefault(id(shard), (shard, []))[1].append((channel, layer.serialize(message)))
    for shard, messages in shards.values():
        for start in range(0, len(messages), PIPELINE_SIZE):
            chunk = messages[start : start + PIPELINE_SIZE]
            await asyncio.wait_for(_pipeline(shard, chunk), timeout)


#: ``PUBLISH`` of ``ARGV[1]`` messages, channels first, then payloads: one reply.
_PUBLISH_ALL = """
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('PUBLISH', ARGV[i + 1], ARGV[i + 1 + n]) end
return n
"""

#: Per shard: whether its server runs scripts (asked once, with a script that does nothing).
_scripts: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


async def _pipeline(shard: Any, messages: list[tuple[str, bytes]]) -> None:
    """Publish a chunk of messages on one shard, in order.

    As one script call where the server runs scripts (Beacon's presence store needs
    them anyway): a pipeline of ``PUBLISH`` commands has one reply per message, and
    redis-py's reading of a thousand replies was most of the relay's CPU. Otherwise
    as a pipeline.
    """
    async with shard._lock:
        shard._ensure_redis()
        if await _runs_scripts(shard):
            channels = [channel for channel, _ in messages]
            payloads = [payload for _, payload in messages]
            await shard._redis.eval(_PUBLISH_ALL, 0, len(messages), *channels, *payloads)
            return
        pipe = shard._redis.pipeline(transaction=False)
        for channel, payload in messages:
            pipe.publish(channel, payload)
        await pipe.execute()


async def _runs_scripts(shard: Any) -> bool:
    known = _scripts.get(shard)
    if known is None:
        from redis.exceptions import ResponseError

        try:
            known = await shard._redis.eval("return 1", 0) == 1
        except ResponseError as exc:  # scripting disabled, or refused to this user
            log.warning("beacon: Redis runs no scripts (%s): batches go as pipelines", exc)
            known = False
        _scripts[shard] = known
    return known


class _Sender:
    """A daemon thread with one event loop that sends to the layer, in submission order."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[Any, Sequence[Item]]] | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="beacon-sender", daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        self.queue = asyncio.Queue()
        self.ready.set()
        down_until = 0.0
        held: tuple[Any, Sequence[Item]] | None = None
        while True:
            layer, first = held if held is not None else await self.queue.get()
            held = None
            # What else is queued for the same layer goes along: one pipeline for a
            # burst of single publishes too. Order is kept.
            items, taken = list(first), 1
            while len(items) < PIPELINE_SIZE and not self.queue.empty():
                following = self.queue.get_nowait()
                if following[0] is not layer:
                    held = following  # marked done in its own round
                    break
                items.extend(following[1])
                taken += 1
            try:
                if self.loop.time() >= down_until:
                    await _send_all(layer, items)
            except Exception as exc:
                down_until = self.loop.time() + get_config()["REDIS_TIMEOUT_SECONDS"]
                log.warning(
                    "beacon: channel layer send failed (%r); log watchers will deliver", exc
                )
            finally:
                for _ in range(taken):
                    self.queue.task_done()

    def submit(self, layer: Any, items: Sequence[Item]) -> None:
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (layer, list(items)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far was sent (or failed)."""
        assert self.queue is not None
        future = asyncio.run_coroutine_threadsafe(self.queue.join(), self.loop)
        try:
            future.result(timeout)
            return True
        except TimeoutError:
            return False


_sender_lock = threading.Lock()
_the_sender: _Sender | None = None


def _sender() -> _Sender:
    global _the_sender
    with _sender_lock:
        if _the_sender is None or not _the_sender.thread.is_alive():
            _the_sender = _Sender()
        return _the_sender


def flush(timeout: float = 10.0) -> bool:
    """Block until queued layer sends are done; call before a short-lived process exits."""
    return True if _the_sender is None else _the_sender.flush(timeout)
