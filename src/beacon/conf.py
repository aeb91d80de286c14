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
    # Largest client frame accepted, in bytes (text length); bigger ones close the socket.
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
    # Seconds between server heartbeats; clients reconnect when two are missed.
    "HEARTBEAT_SECONDS": 25.0,
    # Seconds between polls of the event log for events the channel layer did not bring.
    "LOG_POLL_SECONDS": 1.0,
    # Events fetched from the log per query when replaying or filling a gap.
    "REPLAY_PAGE_SIZE": 500,
    # Retention of the event log (enforced by ``manage.py beacon_prune``):
    # keep at most this many events per stream and none older than this many days.
    "RETENTION_EVENTS": 10_000,
    "RETENTION_DAYS": 30,
    # Channel layer alias used between server processes.
    "CHANNEL_LAYER": "default",
    # Presence: seconds a connection's presence lives without a refresh.
    "PRESENCE_TTL_SECONDS": 45.0,
    # Seconds a server process waits for clients to leave after SIGTERM.
    "SHUTDOWN_GRACE_SECONDS": 5.0,
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
