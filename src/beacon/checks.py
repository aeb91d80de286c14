"""System checks. IDs are stable and listed in ``docs/checks.md``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    from .conf import DEFAULTS

    messages: list[Any] = []
    unknown = set(getattr(settings, "BEACON", {})) - set(DEFAULTS)
    if unknown:
        messages.append(Error(f"Unknown BEACON settings: {sorted(unknown)}", id="beacon.E001"))
    if "channels" not in settings.INSTALLED_APPS and "daphne" not in settings.INSTALLED_APPS:
        messages.append(
            Warning(
                "Beacon runs on Django Channels: add 'channels' to INSTALLED_APPS.",
                id="beacon.W001",
            )
        )
    layers = getattr(settings, "CHANNEL_LAYERS", {})
    backend = layers.get("default", {}).get("BACKEND", "")
    if backend.endswith("core.RedisChannelLayer"):
        messages.append(
            Warning(
                "channels_redis's core layer drops group messages past its capacity; "
                "Beacon recovers them from the log, but the pubsub layer is faster here.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer.",
                id="beacon.W002",
            )
        )
    return messages
