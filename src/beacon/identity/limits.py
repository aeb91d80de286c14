"""Per-user limits: connections per user (across processes with Redis), HTTP writes.

The connection cap counts a user's open sockets. With Redis (``settings.REDIS_URL``)
each user has a sorted set of connection ids scored by an expiry that the owning
process pushes forward every ``REVALIDATE_SECONDS``, so a crashed process's entries
lapse after three intervals; without Redis the count is this event loop's. If Redis
does not answer, the cap falls back to the local count rather than refuse everyone.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from ..conf import get_config

log = logging.getLogger("beacon.identity")

# KEYS[1] the user's set; ARGV: now, expiry, cap, connection id, key ttl (s).
_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class ConnectionCap:
    """``MAX_CONNECTIONS_PER_USER``, counted in this event loop."""

    async def add(self, uid: str, socket: Any, local: int) -> bool:
        return local < get_config()["MAX_CONNECTIONS_PER_USER"]

    async def remove(self, uid: str, socket: Any) -> None:
        pass

    async def refresh(self, by_user: dict[str, set[Any]]) -> None:
        pass


class RedisConnectionCap(ConnectionCap):
    """The cap counted across every process that shares this Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}:beacon:conns"
        self._client: Any = None
        self._add: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(
                self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
            )
            self._add = self._client.register_script(_ADD)
        return self._client

    def _ttl(self) -> float:
        return 3 * float(get_config()["REVALIDATE_SECONDS"])

    async def add(self, uid: str, socket: Any, local: int) -> bool:
        from ..presence import connection_id

        cap = get_config()["MAX_CONNECTIONS_PER_USER"]
        try:
            self._redis()
            now, ttl = time.time(), self._ttl()
            args = [repr(now), repr(now + ttl), cap, connection_id(socket), int(ttl) + 1]
            return bool(await self._add(keys=[f"{self.prefix}:{uid}"], args=args))
        except Exception as exc:
            log.warning("beacon: connection cap: Redis failed (%s); counting locally", exc)
            return local < cap

    async def remove(self, uid: str, socket: Any) -> None:
        from ..presence import connection_id

        try:
            await self._redis().zrem(f"{self.prefix}:{uid}", connection_id(socket))
        except Exception as exc:
            log.warning("beacon: connection cap: Redis failed (%s)", exc)

    async def refresh(self, by_user: dict[str, set[Any]]) -> None:
        from ..presence import connection_id

        if not by_user:
            return
        expiry = repr(time.time() + self._ttl())
        async with self._redis().pipeline(transaction=False) as pipe:
            for uid, sockets in by_user.items():
                key = f"{self.prefix}:{uid}"
                pipe.zadd(key, {connection_id(s): expiry for s in sockets})
                pipe.expire(key, int(self._ttl()) + 1)
            await pipe.execute()


def make_cap() -> ConnectionCap:
    url = getattr(settings, "REDIS_URL", "")
    if url:
        from ..presence import redis_prefix

        return RedisConnectionCap(url, redis_prefix())
    return ConnectionCap()


# -- HTTP writes -------------------------------------------------------------------------


class _Window:
    """Fixed one-minute windows of counts per key, in this process (no Redis)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, window: int) -> int:
        with self.lock:
            start, count = self.counts.get(key, (window, 0))
            count = count + 1 if start == window else 1
            self.counts[key] = (window, count)
            if len(self.counts) > 10_000:
                self.counts = {k: v for k, v in self.counts.items() if v[0] == window}
            return count


_local = _Window()
_sync_redis: Any = None


def _hits(key: str) -> tuple[int, int]:
    """``(hits in this minute, seconds left in it)`` for ``key``, across processes when
    Redis is configured."""
    global _sync_redis
    now = time.time()
    window, left = int(now // 60), 60 - int(now % 60)
    url = getattr(settings, "REDIS_URL", "")
    if url:
        try:
            if _sync_redis is None:
                import redis

                _sync_redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            from ..presence import redis_prefix

            name = f"{redis_prefix()}:beacon:http:{key}:{window}"
            with _sync_redis.pipeline() as pipe:
                count, _ = pipe.incr(name).expire(name, 120).execute()
            return int(count), left
        except Exception as exc:
            log.warning("beacon: HTTP rate limit: Redis failed (%s); counting locally", exc)
    return _local.hit(key, window), left


def reset_http_counts() -> None:
    """Forget every HTTP write count (tests: user ids repeat from one test to the next)."""
    with _local.lock:
        _local.counts.clear()
    if getattr(settings, "REDIS_URL", "") and _sync_redis is not None:
        from ..presence import redis_prefix

        for key in _sync_redis.scan_iter(f"{redis_prefix()}:beacon:http:*", count=500):
            _sync_redis.delete(key)


def rate_limit_response(user: Any) -> HttpResponse | None:
    """A 429 answer if ``user`` went over ``HTTP_WRITES_PER_MINUTE``, else None (and
    the call is counted). Every write endpoint shares the one budget per user."""
    if user is None or not user.is_authenticated:
        return None
    count, left = _hits(f"u{user.pk}")
    if count <= get_config()["HTTP_WRITES_PER_MINUTE"]:
        return None
    response = JsonResponse(
        {"error": "rate_limited", "message": "too many requests", "retry_after": left},
        status=429,
    )
    response["Retry-After"] = str(left)
    return response


def user_rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a write view in :func:`rate_limit_response` for the signed-in user."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = rate_limit_response(getattr(request, "user", None))
        return refused if refused is not None else view(request, *args, **kwargs)

    return wrapper
