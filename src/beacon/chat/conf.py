"""Chat settings: ``BEACON_CHAT`` in Django settings, merged over ``DEFAULTS``.

Read lazily and cached, like ``beacon.conf``; the cache is cleared when a test
overrides ``BEACON_CHAT``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Longest message text accepted, in characters; longer ones get ``invalid_message``.
    "MAX_MESSAGE_LENGTH": 4000,
    # At most one ``typing`` event per user and room this often (server side).
    "TYPING_INTERVAL_SECONDS": 2.0,
    # How long clients show "… is typing" after the last ``typing`` event (sent as ``expires``).
    "TYPING_TIMEOUT_SECONDS": 6.0,
    # Most read receipts sent in a room's ``subscribed`` state (the latest readers).
    "MAX_RECEIPTS_IN_STATE": 100,
}


@cache
def get_chat_config() -> dict[str, Any]:
    config = dict(DEFAULTS)
    user = getattr(settings, "BEACON_CHAT", {})
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"Unknown BEACON_CHAT settings: {sorted(unknown)}")
    config.update(user)
    return config


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: Any) -> None:
    if setting == "BEACON_CHAT":
        get_chat_config.cache_clear()
