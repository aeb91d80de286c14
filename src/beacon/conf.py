"""Beacon's settings: one ``BEACON`` dict in Django settings, merged over ``DEFAULTS``.

Read lazily through :func:`get_config` (never at import time) and cached; the cache
is cleared when a test changes ``BEACON`` with ``override_settings``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Largest client frame accepted, in UTF-8 bytes; bigger ones close the socket (4009).
    "MAX_FRAME_BYTES": 64 * 1024,
    # Deepest JSON nesting accepted in a client frame.
    "MAX_JSON_DEPTH": 16,
    # Per-connection token bucket for client frames: sustained rate and burst.
    "RATE_LIMIT_PER_SECOND": 20.0,
    "RATE_LIMIT_BURST": 60,
    # Streams one socket may subscribe to at once.
    "MAX_SUBSCRIPTIONS": 100,
    # Frames queued for one socket before it counts as too slow and is closed (4013).
    "SOCKET_QUEUE_SIZE": 2048,
    # Bytes one socket may owe (its queue, plus what the ASGI server and the kernel still
    # hold for it, where the server lets Beacon read that) before it is closed (4013).
    "SOCKET_MAX_BYTES": 1024 * 1024,
    # Seconds between server heartbeats; clients reconnect when two are missed.
    "HEARTBEAT_SECONDS": 25.0,
    # Seconds between polls of the event log for events the channel layer did not bring.
    "LOG_POLL_SECONDS": 1.0,
    # PostgreSQL: the DATABASES alias of the log watcher's LISTEN connection (None: the
    # event log's). Point it past a transaction-pooling PgBouncer, which drops LISTEN.
    "LOG_LISTEN_DATABASE": None,
    # Events fetched from the log per query when replaying or filling a gap.
    "REPLAY_PAGE_SIZE": 500,
    # Retention of the event log (enforced by ``manage.py beacon_prune``):
    # keep at most this many events per stream and none older than this many days.
    "RETENTION_EVENTS": 10_000,
    "RETENTION_DAYS": 30,
    # Channel layer alias used between server processes.
    "CHANNEL_LAYER": "default",
    # Presence's Redis: None takes settings.REDIS_URL or the Redis channel layer's first
    # host; "" keeps presence in process memory (one process).
    "REDIS_URL": None,
    # Presence: seconds a connection's presence lives without a refresh.
    "PRESENCE_TTL_SECONDS": 45.0,
    # Threads that run a process's database calls (handshakes, subscribes, replays, the
    # log watcher); 0: the connection pool's ``max_size``, or 8 without a pool.
    "DATABASE_THREADS": 0,
    # Longest wait for one channel-layer or presence call to Redis (group join, send);
    # past it the call is given up (the log watcher delivers meanwhile).
    "REDIS_TIMEOUT_SECONDS": 1.0,
    # Seconds a server process waits for clients to leave after SIGTERM.
    "SHUTDOWN_GRACE_SECONDS": 5.0,
    # Identity (beacon.identity): who a handshake is, tried in order.
    "AUTHENTICATORS": [
        "beacon.identity.SessionAuthenticator",
        "beacon.identity.TicketAuthenticator",
    ],
    # Seconds between re-validations of every live connection's identity.
    "REVALIDATE_SECONDS": 30.0,
    # Seconds a ticket from POST /beacon/tickets/ stays valid (at most 60).
    "TICKET_SECONDS": 30,
    # Bearer tokens (BearerTokenAuthenticator, PyJWT): key None = SECRET_KEY.
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_KEY": None,
    "JWT_AUDIENCE": None,
    "JWT_ISSUER": None,
    "JWT_LEEWAY_SECONDS": 0,
    "JWT_USER_ID_CLAIM": "user_id",
    "JWT_USER_ID_FIELD": "pk",
    "JWT_TOKEN_TYPE": "access",
    # Open sockets per user (across processes with Redis); past it: close 4429.
    "MAX_CONNECTIONS_PER_USER": 50,
    # Publish, typing and read frames per second of all of a user's sockets together.
    "USER_RATE_LIMIT_PER_SECOND": 20.0,
    "USER_RATE_LIMIT_BURST": 60,
    # POSTs per user per minute to Beacon's HTTP write endpoints (429 past it).
    "HTTP_WRITES_PER_MINUTE": 120,
    # Pusher protocol apps (``beacon.pusher.apps``): a list of {"id", "key", "secret", …}.
    "PUSHER_APPS": [],
    # Server-Sent Events (``/beacon/events/``): seconds between keep-alive comments,
    # the reconnect delay sent as ``retry:`` (each response picks between it and twice
    # it), and the most streams one response may follow.
    "SSE_KEEPALIVE_SECONDS": 15.0,
    "SSE_RETRY_MS": 2000,
    "SSE_MAX_STREAMS": 16,
}


def settings_dict(name: str, defaults: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A cached reader of the settings dict ``name`` merged over ``defaults``.

    Unknown keys are an error (a typo would otherwise be ignored silently). The cache
    is cleared when a test changes the setting with ``override_settings``.
    """

    @cache
    def get() -> dict[str, Any]:
        user = getattr(settings, name, {})
        unknown = set(user) - set(defaults)
        if unknown:
            raise ImproperlyConfigured(f"Unknown {name} settings: {sorted(unknown)}")
        return {**defaults, **user}

    def clear(*, setting: str, **kwargs: Any) -> None:
        if setting in (name, "CHANNEL_LAYERS"):
            get.cache_clear()

    setting_changed.connect(clear, weak=False)
    return get


#: ``DEFAULTS`` overridden by ``settings.BEACON``.
get_config = settings_dict("BEACON", DEFAULTS)
