"""The outbox: one connection's way out, the same for every front door.

A front door (the WebSocket consumer, the Pusher socket; an SSE response next)
makes an :class:`Outbox` from two coroutine functions — *send this text*, *close with
this code* — fills :attr:`Outbox.tracks` with the streams it subscribes to, and
attaches the outbox to the hub, whose :class:`~beacon.fanout.hub.Sink` it is.

The hub offers each event (``offer``), which never waits. The rule, written once in
:meth:`Outbox.offer`:

* **send now** when nothing is pending for the connection — no send still waiting, no
  backlog, the stream's lock free — and the seq check (``sequencing.check``) says
  the event is the next one: the send runs on the hub's stack (``eager.start``: no
  task, no wake-up). A duplicate is dropped on the spot;
* **queue** otherwise — a send still waiting, a replay or gap fill holding the
  stream's lock, frames already queued, or a gap to fill from the log — in a bounded
  backlog that one writer task (started only then) drains in order;
* **drop the connection** when the backlog is full, or when what the connection owes
  in bytes — its backlog plus what the server still holds for it (``owed``: the
  server's write buffer and the kernel's unacknowledged bytes, where the front door
  can read them) — passes ``max_bytes``: it closes with 4013 (too slow) through
  ``close_now``, which does not wait behind the stuck sends, and the client resumes
  from its last seq; and when one send has waited ``stall_seconds`` (a reader that
  stopped while the server still holds less than the bound, and the rest of what it
  is owed waits in the log: a replay or a gap fill stuck behind the send).

So a stream's frames leave in seq order, and one slow connection never holds up the
others. Every close goes through :meth:`Outbox.close`, once; every task the outbox
starts is kept on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from .. import eventlog, metrics
from ..db import database_call
from ..protocol import CloseCode, frame_epoch, subscribed_frame
from ..ratelimit import REPLAY_EVENTS_PER_TOKEN, REPLAY_KEEP, TokenBucket
from ..sequencing import Verdict, check
from . import eager

log = logging.getLogger("beacon.outbox")

SendText = Callable[[str], Coroutine[Any, Any, None]]
Close = Callable[[int], Coroutine[Any, Any, None]]
#: Bytes a connection may be handed between two readings of ``owed`` (at least).
CHECK_BYTES = 16 * 1024
#: Seconds one send may wait for the server's buffer before the reader counts as
#: stopped (4013). Below Uvicorn's keepalive (20 s + 20 s), which would end it as 1011.
STALL_SECONDS = 10.0


@dataclass(eq=False, slots=True)
class Track:
    """Where a connection is in one stream: its epoch, the last seq sent, the lock.

    Whoever holds ``lock`` (a replay, a gap fill) sends the stream's frames; offers
    meanwhile queue behind it.
    """

    stream: str
    epoch: str = ""
    last: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


T = TypeVar("T", bound=Track)


class Outbox(Generic[T]):
    """One connection's frames out: eager send, bounded backlog, writer task, 4013."""

    def __init__(
        self,
        send: SendText,
        close: Close,
        *,
        queue_size: int,
        page_size: int,
        max_bytes: int = 0,
        owed: Callable[[], int] | None = None,
        close_now: Callable[[int], None] | None = None,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._door_send = send
        self.stall_seconds = stall_seconds
        self._close = close
        self.queue_size = queue_size
        self.page_size = page_size
        #: The byte bound (0: none); ``owed`` reads what the server holds, ``close_now``
        #: closes without waiting behind queued sends (both None if the door cannot).
        self.max_bytes = int(max_bytes)
        self.owed = owed
        self.close_now = close_now
        self.check_bytes = max(CHECK_BYTES, self.max_bytes // 8)
        #: Characters in the backlog; handed to the server since ``owed`` was read; and
        #: what ``owed`` said then.
        self.backlog_bytes = 0
        self.unchecked = 0
        self.server_owed = 0
        #: The streams the connection subscribes to; the front door adds and removes them.
        self.tracks: dict[str, T] = {}
        self.closing = False
        #: Frames waiting for the writer task; both exist only while there are some.
        self.backlog: deque[tuple[str | None, int | None, str]] | None = None
        self.writer: asyncio.Task[None] | None = None
        #: A send that had to wait (``eager.start``); later frames queue behind it.
        self.inflight: asyncio.Task[None] | None = None
        #: The close an offer had to start (it cannot wait for it).
        self.closer: asyncio.Task[None] | None = None
        #: The connection's token bucket, if it has one: replays spend it (paced).
        self.bucket: TokenBucket | None = None

    # -- the hub's side -------------------------------------------------------------------

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        """Called by the hub, never waits: send now if nothing is pending, else queue.

        ``stream`` None: a frame for the connection itself (heartbeat, presence snapshot).
        """
        if self.closing:
            return
        if self.writer is None and self.inflight is None:
            sub = None if stream is None else self.tracks.get(stream)
            if stream is None or seq is None:
                if stream is None or sub is not None:
                    self._send_now(frame)
                return
            if sub is None:
                return
            if not sub.lock.locked():
                verdict = check(sub.last, seq, sub.epoch, frame_epoch(frame))
                if verdict is Verdict.DUPLICATE:
                    return
                if verdict is Verdict.DELIVER:
                    sub.last = seq
                    metrics.delivered()
                    self._send_now(frame)
                    return
        if self.backlog is None:
            self.backlog = deque()
        elif len(self.backlog) >= self.queue_size or self._over(len(frame)):
            self.too_slow()
            return
        self.backlog.append((stream, seq, frame))
        self.backlog_bytes += len(frame)
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._write_backlog())

    async def close(self, code: IntEnum) -> None:
        """Close once, with a documented code: the one way a connection is closed.

        A door with codes of its own (Pusher's) passes them; its close function maps
        the outbox's and the hub's (4011, 4012, 4013) onto its own.
        """
        if self._closed(code):
            await self._close(int(code))

    def _closed(self, code: IntEnum) -> bool:
        """Mark the connection closing (and count why); False if it already was."""
        if self.closing:
            return False
        self.closing = True
        self.backlog = None
        self.backlog_bytes = 0
        metrics.error(code.name.lower())
        return True

    def too_slow(self) -> None:
        """Close with 4013 now: drop the backlog and the waiting sends, queue no close
        behind them (``close_now``), or start the close as a task if the door cannot."""
        if not self._closed(CloseCode.TOO_SLOW):
            return
        for task in (self.writer, self.inflight):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self.close_now is not None:
            try:
                self.close_now(int(CloseCode.TOO_SLOW))
                return
            except Exception:
                log.exception("beacon: closing a slow socket at once failed")
        self.closer = asyncio.get_running_loop().create_task(
            self._close(int(CloseCode.TOO_SLOW))
        )

    def _over(self, adding: int) -> bool:
        """Would ``adding`` more characters to the backlog pass the byte bound?"""
        if not self.max_bytes:
            return False
        owed = self.backlog_bytes + adding
        if owed + self.server_owed <= self.max_bytes:
            return False
        if self.owed is not None:  # the last reading may be stale: read again
            self.server_owed = self.owed()
            self.unchecked = 0
        return owed + self.server_owed > self.max_bytes

    def _handed(self, size: int) -> None:
        """``size`` characters went to the server: read ``owed`` now and then, and
        close the connection if it owes more than the bound."""
        if self.owed is None or not self.max_bytes:
            return
        self.unchecked += size
        if self.unchecked < self.check_bytes:
            return
        self.unchecked = 0
        self.server_owed = self.owed()
        if self.server_owed + self.backlog_bytes > self.max_bytes:
            self.too_slow()

    def stop(self) -> None:
        """The connection is gone (or going): send nothing more, end the writer."""
        self.closing = True
        self.backlog = None
        for task in (self.writer, self.inflight):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    # -- sending --------------------------------------------------------------------------

    def _send_now(self, frame: str) -> None:
        """Send on the caller's stack; a send that has to wait finishes as ``inflight``."""
        try:
            self.inflight = eager.start(self._door_send(frame))
        except Exception as exc:
            self._send_failed(exc)
            return
        if self.inflight is not None:
            stall = asyncio.get_running_loop().call_later(self.stall_seconds, self.too_slow)
            self.inflight.add_done_callback(lambda _: stall.cancel())
            self.inflight.add_done_callback(self._inflight_done)
        self._handed(len(frame))

    async def _send(self, frame: str) -> None:
        """Send from a task (the writer, a replay, a gap fill): past ``stall_seconds``
        of waiting the reader has stopped, and the connection is closed with 4013."""
        stall = asyncio.get_running_loop().call_later(self.stall_seconds, self.too_slow)
        try:
            await self._door_send(frame)
        finally:
            stall.cancel()

    def _inflight_done(self, task: asyncio.Task[None]) -> None:
        if self.inflight is task:
            self.inflight = None
        if not task.cancelled() and task.exception() is not None:
            self._send_failed(task.exception())

    def _send_failed(self, exc: BaseException | None) -> None:
        """The server refused a frame: the client is gone (its disconnect follows)."""
        self.closing = True
        self.backlog = None
        if not isinstance(exc, OSError):  # uvicorn's ClientDisconnected is an OSError
            log.error("beacon: sending to a socket failed", exc_info=exc)

    async def _write_backlog(self) -> None:
        """Drain the backlog in order, then stop (the next backlog starts a new writer)."""
        try:
            while self.backlog:
                if self.inflight is not None:
                    await asyncio.wait((self.inflight,))
                    self.inflight = None
                    continue
                stream, seq, frame = self.backlog.popleft()
                self.backlog_bytes -= len(frame)
                sub = None if stream is None else self.tracks.get(stream)
                if stream is None or (seq is None and sub is not None):
                    await self._send(frame)
                    self._handed(len(frame))
                elif sub is not None and seq is not None:
                    await self._deliver(sub, seq, frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("beacon: delivery to a socket failed")
            self.backlog = None
            await self.close(CloseCode.INTERNAL_ERROR)
        finally:
            self.writer = None
            if not self.backlog:
                self.backlog = None

    async def _deliver(self, sub: T, seq: int, frame: str) -> None:
        async with sub.lock:
            verdict = check(sub.last, seq, sub.epoch, frame_epoch(frame))
            if verdict is Verdict.DELIVER:
                await self._send(frame)
                sub.last = seq
                metrics.delivered()
                self._handed(len(frame))
            elif verdict is Verdict.GAP:
                metrics.gap_fill()
                await self.catch_up(sub, seq)
                if sub.last < seq:  # the log no longer has the missing ones
                    if sub.last < seq - 1:
                        await self._reset(sub, "retention", sub.epoch, seq - 1)
                    await self._send(frame)
                    sub.last = seq
            elif verdict is Verdict.EPOCH:
                await self._follow_epoch(sub)

    async def _follow_epoch(self, sub: T) -> None:
        """An event of another epoch: drop it if stale, else announce the new history.

        A stream deleted and recreated counts from 1 again, so its seqs mean nothing
        against the old ones: the client is told (``recovered: false``, reason
        ``epoch_changed``, the new epoch and its newest seq) and gets what follows.
        """
        position = await database_call(eventlog.position)(sub.stream, create=False)
        if position is None or position.epoch == sub.epoch:
            return  # a late frame of an older history, or the stream is gone
        await self._reset(sub, "epoch_changed", position.epoch, position.last_seq)

    async def _reset(self, sub: T, reason: str, epoch: str, seq: int) -> None:
        """Tell the client its history cannot continue: it reloads and goes on after ``seq``."""
        sub.epoch, sub.last = epoch, seq
        frame = subscribed_frame(
            stream=sub.stream, epoch=epoch, seq=seq, recovered=False, reason=reason
        )
        await self._send(frame)

    async def catch_up(self, sub: T, upto: int | None, *, paced: bool = False) -> None:
        """Send the stream's logged events after ``sub.last`` (up to ``upto``), in order.

        The caller holds ``sub.lock`` (a replay on subscribe, or a gap fill).
        """
        while (upto is None or sub.last < upto) and not self.closing:
            rows = await database_call(eventlog.events_after)(sub.stream, sub.last)
            await self.send_rows(sub, rows, paced=paced)
            if len(rows) < self.page_size:
                break

    async def send_rows(self, sub: T, rows: list[tuple[int, str]], *, paced: bool) -> None:
        """Send rows read from the log; a replay (``paced``) spends the bucket's tokens first.

        Rows that do not follow ``sub.last`` mean the log was pruned under the read:
        the client is told (``retention``) instead of being sent a silent gap. Rows of
        another epoch (the stream was recreated under the read) are not spliced on.
        """
        if paced and rows and self.bucket is not None:
            keep = self.bucket.burst * REPLAY_KEEP
            cost = len(rows) / REPLAY_EVENTS_PER_TOKEN
            while (wait := self.bucket.spend(time.monotonic(), cost, keep=keep)) > 0:
                await asyncio.sleep(wait)
        for seq, frame in rows:
            if self.closing:
                return
            if frame_epoch(frame) not in (None, sub.epoch):
                await self._follow_epoch(sub)
                return
            if seq > sub.last:
                if seq > sub.last + 1:
                    await self._reset(sub, "retention", sub.epoch, seq - 1)
                await self._send(frame)
                sub.last = seq
                self._handed(len(frame))
