"""Ending and narrowing live connections, in every server process.

Each event loop that serves connections has one :class:`Registry`: its sockets by
user and by session, their credential-expiry timers, the per-user rate limit and
connection cap, and the periodic re-validation. Orders reach every registry as
events of one internal stream, :data:`CONTROL_STREAM`, written to the event log and
delivered like any other event: through Redis to every process's hub where a channel
layer links them, and otherwise by each hub's log watcher (``LOG_POLL_SECONDS``), so
a logout on one process, in a management command or in a Celery worker reaches the
sockets of every other process too. No client may subscribe to it (its namespace has
no policy), and it carries no credential: sessions are named by a keyed hash.

Orders (the event ``type``):

* ``end`` — close with 4001 every socket of these sessions or users (logout, session
  deleted, user deleted or deactivated);
* ``check`` — re-validate these users' sockets now (a password changed);
* ``revoke`` — ask a stream's policy again for every socket subscribed to it (or
  that user's): one that may no longer read it gets ``unsubscribed`` with reason
  ``forbidden`` and no further frame of the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from django.db import transaction

from .. import eventlog, metrics
from ..conf import get_config
from ..db import database_call
from ..protocol import CloseCode
from ..ratelimit import TokenBucket
from .core import Identity, authenticators, session_id
from .limits import ConnectionCap, make_cap

log = logging.getLogger("beacon.identity")

CONTROL_STREAM = "beacon-control:all"


class Socket(Protocol):
    """A live connection as the registry sees it (the WebSocket consumer is one)."""

    identity: Identity
    subscriptions: dict[str, Any]

    async def close_with(self, code: CloseCode) -> None: ...

    async def revoked(self, stream: str) -> None:
        """Drop the subscription and tell the client (``unsubscribed``, ``forbidden``)."""


# -- the orders: any thread, any process ---------------------------------------------------


def _order(type: str, data: dict[str, Any]) -> None:
    from ..publishing import deliver_on_commit

    with transaction.atomic():
        deliver_on_commit([eventlog.append(CONTROL_STREAM, type, data)])


def end_sessions(
    *, session_keys: Iterable[str] = (), users: Iterable[Any] = (), reason: str = ""
) -> None:
    """Close every connection of these sessions (keys) or users, in every process (4001).

    Joins the caller's transaction: the order goes out when it commits.
    """
    sessions = sorted({session_id(k) for k in session_keys if k})
    user_ids = sorted({str(getattr(u, "pk", u)) for u in users}, key=str)
    if sessions or user_ids:
        _order("end", {"sessions": sessions, "users": user_ids, "reason": reason[:100]})


def recheck_users(users: Iterable[Any]) -> None:
    """Re-validate every connection of these users now, in every process."""
    user_ids = sorted({str(getattr(u, "pk", u)) for u in users})
    if user_ids:
        _order("check", {"users": user_ids})


def revoke(stream: str, user: Any = None) -> None:
    """Ask ``stream``'s policy again for every socket subscribed to it (or only
    ``user``'s), in every process; those it refuses are unsubscribed (``forbidden``).

    Call it after changing what the policy reads (a member removed, a room deleted).
    It joins the caller's transaction: the policy is asked once that commits.
    """
    from ..streams import parse_stream

    parse_stream(stream)
    uid = None if user is None else str(getattr(user, "pk", user))
    _order("revoke", {"target": stream, "user": uid})


async def arevoke(stream: str, user: Any = None) -> None:
    await database_call(revoke)(stream, user)


async def aend_sessions(
    *, session_keys: Iterable[str] = (), users: Iterable[Any] = (), reason: str = ""
) -> None:
    await database_call(end_sessions)(
        session_keys=list(session_keys), users=list(users), reason=reason
    )


# -- the registry: one per event loop ----------------------------------------------------


class Registry:
    """This event loop's connections, by user and by session (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: set[Socket] = set()
        self.by_user: dict[str, set[Socket]] = {}
        self.by_session: dict[str, set[Socket]] = {}
        self.timers: dict[Socket, asyncio.TimerHandle] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.cap: ConnectionCap = make_cap()
        #: Newest control seq handled; orders arrive through the hub (``offer``).
        self.last = 0
        self.orders: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.hub: Any = None
        self._lock = asyncio.Lock()

    # -- connections ----------------------------------------------------------------------

    async def admit(self, socket: Socket) -> bool:
        """Register a socket; False if its user is at ``MAX_CONNECTIONS_PER_USER``."""
        identity = socket.identity
        uid = str(identity.user_id)
        local = len(self.by_user.get(uid, ()))
        if not await self.cap.add(uid, socket, local):
            metrics.rejected_handshake("too_many_connections")
            return False
        self.sockets.add(socket)
        self.by_user.setdefault(uid, set()).add(socket)
        if identity.session_id is not None:
            self.by_session.setdefault(identity.session_id, set()).add(socket)
        if identity.expires_at is not None:
            delay = max(0.0, identity.expires_at - time.time())
            self.timers[socket] = self.loop.call_later(delay, self._expired, socket)
        async with self._lock:
            if not self.tasks:
                await self._start()
        return True

    async def remove(self, socket: Socket) -> None:
        if socket not in self.sockets:
            return
        self.sockets.discard(socket)
        identity = socket.identity
        uid = str(identity.user_id)
        _discard(self.by_user, uid, socket)
        if not self.by_user.get(uid):
            self.buckets.pop(uid, None)
        if identity.session_id is not None:
            _discard(self.by_session, identity.session_id, socket)
        timer = self.timers.pop(socket, None)
        if timer is not None:
            timer.cancel()
        await self.cap.remove(uid, socket)
        if not self.sockets:
            await self._stop()

    def user_bucket(self, socket: Socket) -> TokenBucket:
        """The rate limit that all of a user's sockets in this process share."""
        uid = str(socket.identity.user_id)
        bucket = self.buckets.get(uid)
        if bucket is None:
            config = get_config()
            bucket = self.buckets[uid] = TokenBucket(
                rate=config["USER_RATE_LIMIT_PER_SECOND"], burst=config["USER_RATE_LIMIT_BURST"]
            )
        return bucket

    def _expired(self, socket: Socket) -> None:
        """The credential's ``exp`` passed: tell the client to get a new one (4401)."""
        self.timers.pop(socket, None)
        self.loop.create_task(socket.close_with(CloseCode.CREDENTIAL_EXPIRED))

    def _end(self, sockets: Iterable[Socket], why: str) -> None:
        for socket in list(sockets):
            if socket in self.sockets:
                log.info("beacon: closing a socket of user %s (%s)", socket.identity.user_id, why)
                self.loop.create_task(socket.close_with(CloseCode.UNAUTHENTICATED))

    # -- background: orders and re-validation ------------------------------------------------

    async def _start(self) -> None:
        from ..fanout.hub import get_hub

        position = await database_call(eventlog.position)(CONTROL_STREAM)
        assert position is not None
        self.last = position.last_seq
        self.hub = get_hub()
        await self.hub.add(CONTROL_STREAM, self, position.last_seq)
        self.tasks = [
            self.loop.create_task(self._follow_orders()),
            self.loop.create_task(self._revalidate_loop()),
        ]

    async def _stop(self) -> None:
        async with self._lock:
            for task in self.tasks:
                task.cancel()
            self.tasks = []
            if self.hub is not None:
                await self.hub.remove(CONTROL_STREAM, self)
                self.hub = None

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        """The hub's side: an order arrived (through the layer or the log watcher)."""
        if stream == CONTROL_STREAM and seq is not None and seq > self.last:
            self.orders.put_nowait((seq, frame))

    async def _follow_orders(self) -> None:
        while True:
            seq, frame = await self.orders.get()
            try:
                if seq <= self.last:
                    continue
                if seq > self.last + 1:  # missed some (layer hiccup): read them from the log
                    rows = await database_call(eventlog.events_after)(
                        CONTROL_STREAM, self.last
                    )
                    for missed_seq, missed in rows:
                        if self.last < missed_seq < seq:
                            self.last = missed_seq
                            await self.carry_out(json.loads(missed))
                self.last = seq
                await self.carry_out(json.loads(frame))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("beacon: could not carry out a control order")

    async def carry_out(self, order: dict[str, Any]) -> None:
        kind = order.get("type")
        if kind == "end":
            for sid in order.get("sessions", ()):
                self._end(self.by_session.get(sid, ()), "session ended")
            for uid in order.get("users", ()):
                self._end(self.by_user.get(str(uid), ()), "user ended")
        elif kind == "check":
            sockets = [s for uid in order.get("users", ()) for s in self.by_user.get(str(uid), ())]
            await self.revalidate(sockets)
        elif kind == "revoke":
            await self._revoke(order["target"], order.get("user"))

    async def _revoke(self, stream: str, user: str | None) -> None:
        from ..streams import policy_for

        holders = [s for s in self.sockets if stream in s.subscriptions]
        if user is not None:
            holders = [s for s in holders if str(s.identity.user_id) == user]
        if not holders:
            return
        policy, key = policy_for(stream)
        users = {str(s.identity.user_id): s.identity.user for s in holders}
        allowed = await database_call(_ask)(policy, key, users)
        for socket in holders:
            if not allowed.get(str(socket.identity.user_id), False):
                await socket.revoked(stream)

    async def revalidate(self, sockets: Iterable[Socket] | None = None) -> int:
        """Close the sockets whose identity no longer holds; returns how many."""
        sockets = list(self.sockets if sockets is None else sockets)
        if not sockets:
            return 0
        dead = await database_call(_dead)([s.identity for s in sockets])
        doomed = [s for s in sockets if s.identity in dead]
        self._end(doomed, "identity no longer valid")
        return len(doomed)

    async def _revalidate_loop(self) -> None:
        while True:
            await asyncio.sleep(get_config()["REVALIDATE_SECONDS"])
            try:
                await self.revalidate()
                await self.cap.refresh(self.by_user)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("beacon: re-validating connections failed: %s", exc)


def _discard(index: dict[str, set[Any]], key: str, socket: Any) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(socket)
        if not group:
            del index[key]


def _ask(policy: Any, key: str, users: dict[str, Any]) -> dict[str, bool]:
    return {uid: bool(policy.can_subscribe(user, key)) for uid, user in users.items()}


def _dead(identities: list[Identity]) -> set[Identity]:
    """One pass for all: each authenticator re-validates its own identities at once."""
    by_method: dict[str, list[Identity]] = {}
    for identity in identities:
        by_method.setdefault(identity.method, []).append(identity)
    dead: set[Identity] = set()
    shared: list[Identity] = []
    from .core import Authenticator

    known = {getattr(a, "method", None): a for a in authenticators()}
    for method, group in by_method.items():
        auth = known.get(method)
        if auth is None or type(auth).revalidate is Authenticator.revalidate:
            shared.extend(group)  # the default: sessions and users, checked together
        else:
            dead |= auth.revalidate(group)
    if shared:
        from .authenticators import ended

        dead |= ended(shared)
    return dead


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Registry] = (
    weakref.WeakKeyDictionary()
)


def get_registry() -> Registry:
    """The registry of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = Registry(loop)
    return registry
