"""Presence: who is on a stream right now, counted per user, across server processes.

Theory of operation
-------------------
Every socket that joins a stream's presence holds one **entry** ``(stream, user,
connection)`` that expires ``ttl`` seconds after it was last refreshed. A user is
present on a stream while at least one of their entries lives, so three tabs of alice
are one alice, and she leaves when her last entry goes: by a clean :func:`leave`
(unsubscribe, disconnect) or by expiry.

Entries live in a **store** shared by the server processes: Redis when :func:`redis_url`
names one (keys under the Redis prefix, see :func:`redis_prefix`), otherwise process
memory (embedded mode: one process, no Redis). Each event loop that has entries runs a
**keeper** which, every ``ttl / 3``:

* **refreshes** its own live entries, so a live connection never expires; a refresh
  that finds its user gone (swept while the process stalled, or Redis restarted)
  announces the join again;
* **sweeps** the streams its own sockets are on: drops expired entries and announces
  ``leave`` for each user left with none. Only a process with a socket on a stream
  sweeps it, because only it has someone to tell; a sweep is one atomic Redis script,
  so when several processes sweep one stream each leave is announced exactly once.

A process killed with SIGKILL runs no disconnect handler. Its entries stop being
refreshed, expire ``ttl`` after their last refresh, and the next sweep by a surviving
process announces the leaves: at most ``4/3 · ttl`` after the kill (60 s for the
default ``PRESENCE_TTL_SECONDS`` of 45). Expiry times come from **one clock**:
Redis's own (``TIME``, read inside each script), never a server process's, so a
process whose clock is off cannot make others' entries look expired or its own live
for ever. (A process that finds its clock off from Redis's by more than a second logs
a warning once: event ``ts`` and the fan-out latency metric do use local clocks.)
Every Redis call waits at most ``REDIS_TIMEOUT_SECONDS``.

Announcements are **ephemeral events** on the stream itself (no seq, not stored):
``{"type": "join", "user": 7, "name": "alice"}`` and ``{"type": "leave", …}``. A socket
that joins gets the whole list once, as the ``presence`` control frame
(:func:`snapshot_frame`); joins and leaves keep it current afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .fanout.loops import PerLoop
from .protocol import event_frame

log = logging.getLogger("beacon.presence")

#: ``(user id, display name)``; user ids are kept as strings in the stores.
Member = tuple[str, str]
#: ``(stream, user id, name)``: a user who joined or left a stream.
Change = tuple[str, str, str]
#: An entry to refresh: ``(stream, user id, name, connection id)``.
Entry = tuple[str, str, str, str]


def user_json(user_id: str) -> int | str:
    """A stored user id as the JSON value the rest of the protocol uses (ints stay ints)."""
    return int(user_id) if user_id.isdigit() and len(user_id) < 19 else user_id


def display_name(user: Any) -> str:
    """The name shown for a user: full name if it has one, else the username."""
    full = getattr(user, "get_full_name", None)
    name = full() if callable(full) else ""
    return (name or user.get_username())[:150]


def connection_id(consumer: Any) -> str:
    """A random id for a socket, made once (consumers have no channel name of their own)."""
    conn = getattr(consumer, "beacon_connection_id", None)
    if conn is None:
        conn = consumer.beacon_connection_id = uuid.uuid4().hex
    return str(conn)


def snapshot_frame(stream: str, members: Iterable[Member]) -> str:
    """The ``presence`` control frame: everyone present on the stream, sorted by name."""
    listed = [{"user": user_json(uid), "name": name} for uid, name in members]
    listed.sort(key=lambda m: (str(m["name"]).lower(), str(m["user"])))
    return event_frame(type="presence", stream=stream, data={"members": listed}, ts=time.time())


# -- stores ------------------------------------------------------------------------------


class PresenceStore(Protocol):
    """Where entries live. ``ttl`` in seconds; every method is atomic per stream."""

    async def add(self, stream: str, user_id: str, name: str, conn: str, ttl: float) -> bool:
        """Add or refresh an entry; True if the user was not present before."""

    async def remove(self, stream: str, user_id: str, conn: str) -> bool:
        """Drop an entry; True if that was the user's last one (the user left)."""

    async def refresh(self, entries: list[Entry], ttl: float) -> list[Change]:
        """Refresh many entries; returns the users that were not present any more."""

    async def sweep(self, streams: Iterable[str]) -> list[Change]:
        """Drop expired entries; returns the users left with none (each exactly once)."""

    async def members(self, stream: str) -> list[Member]:
        """The users present on a stream."""

    async def close(self) -> None:
        """Release connections (the store may be used again afterwards)."""


@dataclass
class PresenceTable:
    """The store's rules on plain dicts; time is passed in. Pure: no I/O, no clock.

    ``expiry[stream][user][conn]`` is when an entry expires; ``names[stream][user]``
    the name shown. A user with an entry at all is listed until a sweep or a remove
    takes the last one, so an unswept expired user still counts as "was present"
    for :meth:`remove` (its leave is announced once, by whoever drops it).
    """

    expiry: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    names: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(
        self, stream: str, user_id: str, name: str, conn: str, expires: float, now: float
    ) -> bool:
        users = self.expiry.setdefault(stream, {})
        conns = users.get(user_id)
        new = conns is None or max(conns.values(), default=0.0) <= now
        users.setdefault(user_id, {})[conn] = expires
        self.names.setdefault(stream, {})[user_id] = name
        return new

    def remove(self, stream: str, user_id: str, conn: str, now: float) -> bool:
        users = self.expiry.get(stream, {})
        conns = users.get(user_id)
        if conns is None:
            return False
        conns.pop(conn, None)
        for other in [c for c, exp in conns.items() if exp <= now]:
            del conns[other]
        if conns:
            return False
        self._drop(stream, user_id)
        return True

    def sweep(self, stream: str, now: float) -> list[Member]:
        gone: list[Member] = []
        for user_id, conns in list(self.expiry.get(stream, {}).items()):
            for conn in [c for c, exp in conns.items() if exp <= now]:
                del conns[conn]
            if not conns:
                gone.append((user_id, self.names.get(stream, {}).get(user_id, "")))
                self._drop(stream, user_id)
        return gone

    def members(self, stream: str, now: float) -> list[Member]:
        names = self.names.get(stream, {})
        return [
            (user_id, names.get(user_id, ""))
            for user_id, conns in self.expiry.get(stream, {}).items()
            if max(conns.values(), default=0.0) > now
        ]

    def _drop(self, stream: str, user_id: str) -> None:
        self.expiry.get(stream, {}).pop(user_id, None)
        self.names.get(stream, {}).pop(user_id, None)
        if not self.expiry.get(stream):
            self.expiry.pop(stream, None)
            self.names.pop(stream, None)


class MemoryPresenceStore:
    """Embedded mode: a :class:`PresenceTable` in this process (all event loops share it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = PresenceTable()
        self.clock = clock

    async def add(self, stream: str, user_id: str, name: str, conn: str, ttl: float) -> bool:
        now = self.clock()
        return self.table.add(stream, user_id, name, conn, now + ttl, now)

    async def remove(self, stream: str, user_id: str, conn: str) -> bool:
        return self.table.remove(stream, user_id, conn, self.clock())

    async def refresh(self, entries: list[Entry], ttl: float) -> list[Change]:
        now = self.clock()
        return [
            (stream, user_id, name)
            for stream, user_id, name, conn in entries
            if self.table.add(stream, user_id, name, conn, now + ttl, now)
        ]

    async def sweep(self, streams: Iterable[str]) -> list[Change]:
        now = self.clock()
        return [(s, uid, name) for s in streams for uid, name in self.table.sweep(s, now)]

    async def members(self, stream: str) -> list[Member]:
        return self.table.members(stream, self.clock())

    async def close(self) -> None:
        pass


# Redis layout, for a stream S under prefix P (user ids and connection ids are strings):
#   P:S:users      ZSET user -> expiry of the user's newest entry
#   P:S:u:<user>   ZSET connection -> expiry
#   P:S:names      HASH user -> name
# Expiry times are Redis's clock (TIME) plus the ttl, taken inside each script. Each
# key is given a Redis TTL of twice the presence ttl on every add, so a stream nobody
# refreshes any more disappears by itself. The scripts build the per-user keys from a
# prefix argument: fine for one Redis server, not for Redis Cluster.

# Redis >= 5 replicates scripts by their effects, which lets a writing script read
# TIME; on 7 the call is a no-op.
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_ADD = _NOW + """
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], string.format('%.6f', now + tonumber(ARGV[3])), ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
if (not prev) or tonumber(prev) <= now then return 1 end
return 0
"""

_REMOVE = _NOW + """
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now))
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #top == 0 then
  local was = redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return was
end
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
return 0
"""

_SWEEP = _NOW + """
local cut = string.format('%.6f', now)
local gone = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut)
for _, user in ipairs(expired) do
  local conns = ARGV[1] .. user
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', cut)
  local top = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', KEYS[1], user)
    local name = redis.call('HGET', KEYS[2], user)
    redis.call('HDEL', KEYS[2], user)
    table.insert(gone, user)
    table.insert(gone, name or '')
  else
    redis.call('ZADD', KEYS[1], top[2], user)
  end
end
return gone
"""

_MEMBERS = _NOW + """
local present = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.6f', now), '+inf')
local out = {}
for _, user in ipairs(present) do
  table.insert(out, user)
  table.insert(out, redis.call('HGET', KEYS[2], user) or '')
end
return out
"""

_SCRIPTS = (("add", _ADD), ("remove", _REMOVE), ("sweep", _SWEEP), ("members", _MEMBERS))

#: Past this difference from Redis's clock, a process logs a warning (once).
CLOCK_SKEW_WARNING_SECONDS = 1.0


class RedisPresenceStore:
    """Presence shared by every server process through one Redis (``redis.asyncio``).

    ``clock`` is this process's wall clock. Expiry never reads it (Redis's clock
    decides); it is only compared with Redis's once, to warn of a skewed machine.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.prefix = f"{prefix}:beacon:presence"
        self.clock = clock
        self.timeout = timeout
        #: Seconds this process's clock is ahead of Redis's (set on first use).
        self.skew: float | None = None
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            # Bounded waits: a Redis that does not answer must not hang a subscribe.
            self._client = aioredis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
            )
            self._scripts = {
                name: self._client.register_script(source) for name, source in _SCRIPTS
            }
        return self._client

    async def _call(self, call: Awaitable[Any]) -> Any:
        """One Redis round trip, given up after ``timeout`` (redis-py may retry within)."""
        return await asyncio.wait_for(call, self.timeout)

    async def _check_clock(self) -> None:
        if self.skew is not None:
            return
        seconds, micros = await self._call(self._redis().time())
        self.skew = self.clock() - (seconds + micros / 1e6)
        if abs(self.skew) > CLOCK_SKEW_WARNING_SECONDS:
            log.warning(
                "beacon: this process's clock is %+.1f s off Redis's; presence uses Redis's,"
                " but event timestamps and latency metrics use this one (check NTP)",
                self.skew,
            )

    def _keys(self, stream: str, user_id: str) -> list[str]:
        base = f"{self.prefix}:{stream}"
        return [f"{base}:users", f"{base}:u:{user_id}", f"{base}:names"]

    def _add_args(self, user_id: str, name: str, conn: str, ttl: float) -> list[Any]:
        return [user_id, conn, repr(float(ttl)), name, max(1000, int(ttl * 2000))]

    async def add(self, stream: str, user_id: str, name: str, conn: str, ttl: float) -> bool:
        self._redis()
        await self._check_clock()
        args = self._add_args(user_id, name, conn, ttl)
        return bool(
            await self._call(self._scripts["add"](keys=self._keys(stream, user_id), args=args))
        )

    async def remove(self, stream: str, user_id: str, conn: str) -> bool:
        self._redis()
        keys = self._keys(stream, user_id)
        return bool(await self._call(self._scripts["remove"](keys=keys, args=[user_id, conn])))

    async def refresh(self, entries: list[Entry], ttl: float) -> list[Change]:
        if not entries:
            return []
        client = self._redis()
        async with client.pipeline(transaction=False) as pipe:
            for stream, user_id, name, conn in entries:
                await self._scripts["add"](
                    keys=self._keys(stream, user_id),
                    args=self._add_args(user_id, name, conn, ttl),
                    client=pipe,
                )
            results = await self._call(pipe.execute())
        return [
            (s, uid, name) for (s, uid, name, _), new in zip(entries, results, strict=True) if new
        ]

    async def sweep(self, streams: Iterable[str]) -> list[Change]:
        streams = list(streams)
        if not streams:
            return []
        client = self._redis()
        async with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                users, _, names = self._keys(stream, "")
                await self._scripts["sweep"](
                    keys=[users, names], args=[f"{self.prefix}:{stream}:u:"], client=pipe
                )
            results = await self._call(pipe.execute())
        return [
            (stream, gone[i], gone[i + 1])
            for stream, gone in zip(streams, results, strict=True)
            for i in range(0, len(gone), 2)
        ]

    async def members(self, stream: str) -> list[Member]:
        self._redis()
        users, _, names = self._keys(stream, "")
        flat = await self._call(self._scripts["members"](keys=[users, names]))
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def clear(self) -> None:
        """Delete every presence key under this prefix (tests)."""
        client = self._redis()
        async for key in client.scan_iter(f"{self.prefix}:*", count=500):
            await client.delete(key)

    async def age(self, seconds: float) -> None:
        """Make every entry under this prefix ``seconds`` older (tests: expiry, no sleep).

        Redis's clock cannot be moved, so the test moves the entries instead.
        """
        client = self._redis()
        async for key in client.scan_iter(f"{self.prefix}:*", count=500):
            if await client.type(key) != "zset":
                continue
            for member, score in await client.zrange(key, 0, -1, withscores=True):
                await client.zadd(key, {member: score - seconds})


def redis_prefix() -> str:
    """Presence keys go under ``settings.BEACON_REDIS_PREFIX`` if set, else the channel
    layer's own ``prefix`` (which the demo takes from ``BEACON_REDIS_PREFIX``), so
    deployments and parallel test runs that share a Redis stay apart."""
    from django.conf import settings

    from .conf import get_config

    prefix = getattr(settings, "BEACON_REDIS_PREFIX", None)
    if not prefix:
        layers = getattr(settings, "CHANNEL_LAYERS", {})
        config = layers.get(get_config()["CHANNEL_LAYER"], {}).get("CONFIG", {})
        prefix = config.get("prefix") or "asgi"
    return str(prefix)


_memory_store: MemoryPresenceStore | None = None


def redis_url() -> str:
    """The Redis that presence lives in, or ``""`` for process memory.

    ``BEACON["REDIS_URL"]`` if set (``""`` forces memory), else a top-level
    ``settings.REDIS_URL``, else the first host of a channels_redis layer: a project
    whose processes share a Redis layer gets shared presence without saying it twice.
    """
    from django.conf import settings

    from .conf import get_config

    config = get_config()
    if config["REDIS_URL"] is not None:
        return str(config["REDIS_URL"])
    if getattr(settings, "REDIS_URL", ""):
        return str(settings.REDIS_URL)
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get(config["CHANNEL_LAYER"], {})
    if not str(layer.get("BACKEND", "")).startswith("channels_redis."):
        return ""
    hosts = layer.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379"]
    host = hosts[0]
    if isinstance(host, dict):
        host = host.get("address", "")
    if isinstance(host, (list, tuple)) and len(host) == 2:
        return f"redis://{host[0]}:{host[1]}"
    return host if isinstance(host, str) and "://" in host else ""


def make_store() -> PresenceStore:
    """Redis when :func:`redis_url` names one, else this process's memory."""
    from .conf import get_config

    global _memory_store

    url = redis_url()
    if url:
        return RedisPresenceStore(
            url, redis_prefix(), timeout=float(get_config()["REDIS_TIMEOUT_SECONDS"])
        )
    if _memory_store is None:
        _memory_store = MemoryPresenceStore()
    return _memory_store


# -- the keeper: one per event loop ----------------------------------------------------


Announce = Callable[[str, str, dict[str, Any]], Awaitable[None]]


async def _announce(stream: str, type: str, data: dict[str, Any]) -> None:
    from .publishing import apublish_ephemeral

    await apublish_ephemeral(stream, type, data)


class Keeper:
    """This event loop's presence entries, kept alive and swept every ``ttl / 3``."""

    def __init__(self, store: PresenceStore, ttl: float, announce: Announce = _announce) -> None:
        self.store = store
        self.ttl = ttl
        self.announce = announce
        #: ``(stream, connection) -> (user id, name)`` of this loop's sockets.
        self.local: dict[tuple[str, str], Member] = {}
        self.task: asyncio.Task[None] | None = None

    async def join(self, stream: str, conn: str, user_id: Any, name: str) -> list[Member]:
        """Add a socket's entry; announce the user if new; return who is present."""
        uid = str(user_id)
        self.local[(stream, conn)] = (uid, name)
        self._start()
        if await self.store.add(stream, uid, name, conn, self.ttl):
            await self._say(stream, "join", uid, name)
        return await self.store.members(stream)

    async def leave(self, stream: str, conn: str) -> None:
        """Drop a socket's entry; announce the user's leave if it was their last."""
        entry = self.local.pop((stream, conn), None)
        if entry is None:
            return
        uid, name = entry
        if await self.store.remove(stream, uid, conn):
            await self._say(stream, "leave", uid, name)
        if not self.local:
            await self._stop()

    async def tick(self) -> None:
        """Refresh this loop's entries, then sweep the streams they are on."""
        entries = [(s, uid, name, conn) for (s, conn), (uid, name) in self.local.items()]
        for stream, uid, name in await self.store.refresh(entries, self.ttl):
            await self._say(stream, "join", uid, name)
        streams = {s for s, _ in self.local}
        for stream, uid, name in await self.store.sweep(sorted(streams)):
            await self._say(stream, "leave", uid, name)

    async def _say(self, stream: str, type: str, uid: str, name: str) -> None:
        try:
            await self.announce(stream, type, {"user": user_json(uid), "name": name})
        except Exception:
            log.exception("beacon: could not announce %s on %s", type, stream)

    def _start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        await self.store.close()

    async def _run(self) -> None:
        while self.local:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("beacon: presence refresh/sweep failed (%s); retrying", exc)


_keepers: PerLoop[Keeper] = PerLoop()


def get_keeper() -> Keeper:
    """The presence keeper of the running event loop (created on first use)."""
    from .conf import get_config

    return _keepers.get(
        lambda loop: Keeper(make_store(), float(get_config()["PRESENCE_TTL_SECONDS"]))
    )


async def join(stream: str, consumer: Any) -> list[Member]:
    """Record that a socket's user is on a stream; returns everyone present."""
    user = consumer.user
    return await get_keeper().join(stream, connection_id(consumer), user.pk, display_name(user))


async def leave(stream: str, consumer: Any) -> None:
    """The socket left the stream (unsubscribed or closed)."""
    await get_keeper().leave(stream, connection_id(consumer))


async def members(stream: str) -> list[Member]:
    """Who is on a stream now (any process)."""
    return await get_keeper().store.members(stream)
