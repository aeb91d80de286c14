"""The log watcher: what the channel layer did not bring, at a cost that follows events.

A hub's sockets must get every committed event of their streams even when the layer
lost it (Redis down at commit time) or never had it (local mode, a publisher in
another process: ``beacon_notify``, a Celery worker). Asking the database for the
newest seq of each subscribed stream every ``LOG_POLL_SECONDS`` would cost queries in
proportion to the subscribed streams, with no traffic at all. Instead:

* **PostgreSQL**: a trigger on ``beacon_stream`` sends ``NOTIFY beacon_log, '<stream>
  <epoch> <seq>'`` for each new seq (migration 0002). PostgreSQL delivers a transaction's
  notifications at its commit, in commit order, and never a rolled-back one's, so an
  event id taken early that commits late is still announced. The watcher holds one
  ``LISTEN`` connection; an announced seq that the layer has not brought within half
  a poll interval is read from the log. Idle, the only query is a ``SELECT 1`` each
  ``LOG_POLL_SECONDS`` that proves the connection alive. While it is down the
  watcher polls every stream as before, and after each (re)connect it polls once
  more, so nothing committed in between is missed.
* **SQLite**: writers hold the database lock from their insert to their commit, so
  event ids commit in id order. The watcher keeps the highest id it has seen and
  reads the ids after it: one query per poll, whatever the number of streams.
* Any other database (or PostgreSQL through psycopg2): the per-stream poll, which is
  correct everywhere.

The first poll of a hub is always the per-stream one: it fixes the starting point
(the scan's mark is read before it). A stream subscribed later starts where its
first socket's replay ended (``Hub.add``); an event that committed between that
read and the subscribe was neither announced nor scanned for it, so the next poll
asks for the newest seq of the streams subscribed since the last one: work that
follows subscribes, not subscribed streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import time
from typing import TYPE_CHECKING, Any

from django.db import connections, router

from .. import eventlog
from ..conf import get_config
from ..db import database_call
from ..models import Event

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("beacon.hub")

CHANNEL = "beacon_log"


def vendor() -> str:
    return connections[router.db_for_write(Event)].vendor


class LogWatcher:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        #: SQLite: the newest event id scanned (None until the first, per-stream poll).
        self.mark: int | None = None
        #: PostgreSQL: newest announced ``(epoch, seq)`` per stream, and when the first
        #: still missing was announced.
        self.announced: dict[str, tuple[str, int, float]] = {}
        #: Streams subscribed since the last poll (checked once, by name).
        self.fresh: set[str] = set()
        #: Set while a LISTEN connection is up (announcements replace polling).
        self.listening = asyncio.Event()
        #: Set after each round of the listener (tests await it instead of sleeping).
        self.ticked = asyncio.Event()

    def added(self, stream: str) -> None:
        """The hub has a new stream: check it once at the next poll."""
        self.fresh.add(stream)

    async def run(self) -> None:
        """The hub's task: listen on PostgreSQL, scan or poll elsewhere."""
        if vendor() == "postgresql" and importlib.util.find_spec("psycopg") is not None:
            await self._listen_forever()  # (psycopg2 alone: the per-stream poll below)
        while True:
            await asyncio.sleep(get_config()["LOG_POLL_SECONDS"])
            await self._guarded(self.poll())

    async def _guarded(self, call: Any) -> None:
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("beacon: log watcher poll failed: %s", exc)

    async def poll(self) -> int:
        """Dispatch events in the log that the hub has not seen; returns how many."""
        if not self.hub.subscribers:
            self.mark = None  # the next subscriber starts afresh, not from a backlog
            return 0
        if self.mark is None or vendor() != "sqlite":
            self.fresh.clear()
            mark = await database_call(eventlog.log_mark)()
            heads = await database_call(eventlog.heads)(list(self.hub.subscribers))
            self.mark = mark
            return await self.catch_up(heads)
        heads = await self._fresh_heads()
        more = True
        while more:
            self.mark, found, more = await database_call(eventlog.changes_after)(
                self.mark
            )
            heads.update(found)  # read later: newer
        return await self.catch_up(heads)

    async def _fresh_heads(self) -> dict[str, tuple[str, int]]:
        fresh = [s for s in self.fresh if s in self.hub.subscribers]
        self.fresh.clear()
        if not fresh:
            return {}
        return await database_call(eventlog.heads)(fresh)

    async def catch_up(self, heads: dict[str, tuple[str, int]]) -> int:
        """Read and dispatch what the subscribed streams have beyond what the hub has.

        ``heads``: ``(epoch, newest seq)`` per stream, as the log has them.
        """
        known, epochs = self.hub.known, self.hub.epochs
        behind = {}
        for s, (epoch, last) in heads.items():
            if s not in self.hub.subscribers:
                continue
            if epochs.setdefault(s, epoch) != epoch:
                # A new history (the stream was deleted and recreated): its seqs are not
                # comparable with ``known``. Its newest event is enough to make each
                # socket announce the new epoch.
                epochs[s], known[s] = epoch, max(0, last - 1)
            if last > known.get(s, 0):
                behind[s] = known.get(s, 0)
        if not behind:
            return 0
        missed = await database_call(read_missed)(behind)
        self.hub.dispatch(missed)
        return len(missed)

    # -- PostgreSQL -----------------------------------------------------------------------

    def announce(self, payload: str) -> None:
        """A ``NOTIFY`` from the trigger: remember it if a subscribed stream lacks it."""
        stream, epoch, text = payload.rsplit(" ", 2)
        if stream not in self.hub.subscribers:
            return
        seq = int(text)
        if epoch == self.hub.epochs.get(stream, epoch) and seq <= self.hub.known.get(stream, 0):
            return
        since = self.announced.get(stream, ("", 0, time.monotonic()))[2]
        self.announced[stream] = (epoch, seq, since)  # commit order: the newest

    async def due(self, grace: float) -> int:
        """Read what was announced over ``grace`` seconds ago and is still missing."""
        now = time.monotonic()
        heads = {s: (e, seq) for s, (e, seq, t) in self.announced.items() if now - t >= grace}
        for stream in heads:
            del self.announced[stream]
        heads.update(await self._fresh_heads())  # read now: newer
        return await self.catch_up(heads) if heads else 0

    async def _listen_forever(self) -> None:
        """Listen; while that fails, poll every stream and retry each poll interval."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("beacon: log watcher LISTEN failed (%r); polling meanwhile", exc)
            self.listening.clear()
            await asyncio.sleep(get_config()["LOG_POLL_SECONDS"])
            await self._guarded(self.poll())

    async def _listen(self) -> None:
        import psycopg

        alias = get_config()["LOG_LISTEN_DATABASE"] or router.db_for_write(Event)
        params = dict(connections[alias].get_connection_params())
        for key in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(key, None)
        conn = await psycopg.AsyncConnection.connect(autocommit=True, **params)
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            # Whatever committed before LISTEN took effect: one per-stream poll.
            await self.poll()
            self.listening.set()
            checked = time.monotonic()
            while True:
                interval = get_config()["LOG_POLL_SECONDS"]
                async for note in conn.notifies(timeout=interval / 2):
                    self.announce(note.payload)
                if time.monotonic() - checked >= interval:
                    await conn.execute("SELECT 1")  # a dead connection raises here
                    checked = time.monotonic()
                await self._guarded(self.due(interval / 2))
                self.ticked.set()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()


def read_missed(behind: dict[str, int]) -> list[tuple[str, int | None, str]]:
    items: list[tuple[str, int | None, str]] = []
    for stream, after in behind.items():
        while True:
            rows = eventlog.events_after(stream, after)
            items.extend((stream, seq, frame) for seq, frame in rows)
            if len(rows) < get_config()["REPLAY_PAGE_SIZE"]:
                break
            after = rows[-1][0]
    return items
