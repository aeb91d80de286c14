"""System checks. IDs are stable and listed in ``docs/checks.md``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


def _layer_backend() -> str:
    from .conf import get_config

    alias = get_config()["CHANNEL_LAYER"]
    return str(getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {}).get("BACKEND", ""))


@register()
def check_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    from .conf import DEFAULTS

    messages: list[Any] = []
    unknown = set(getattr(settings, "BEACON", {})) - set(DEFAULTS)
    if unknown:
        messages.append(Error(f"Unknown BEACON settings: {sorted(unknown)}", id="beacon.E001"))
        return messages  # the other checks read BEACON through get_config
    apps = settings.INSTALLED_APPS
    if "channels" not in apps and "daphne" not in apps:
        messages.append(
            Warning(
                "Beacon runs on Django Channels and an ASGI server: neither 'daphne' nor "
                "'channels' is in INSTALLED_APPS.",
                hint="INSTALLED_APPS = ['daphne', ..., 'channels', 'beacon'] "
                "('daphne' first, so that runserver serves ASGI).",
                id="beacon.W001",
            )
        )
    if "daphne" not in apps:
        messages.append(
            Warning(
                "'daphne' is not in INSTALLED_APPS, so 'manage.py runserver' is Django's "
                "WSGI server: every /ws/ request is a 404 and pages are never live.",
                hint="Put 'daphne' first in INSTALLED_APPS, or serve the project with an "
                "ASGI server (daphne, uvicorn) and silence beacon.W003.",
                id="beacon.W003",
            )
        )
    if "django.contrib.staticfiles" not in apps:
        messages.append(
            Warning(
                "'django.contrib.staticfiles' is not in INSTALLED_APPS: nothing finds or "
                "collects beacon/beacon.js, so pages cannot load Beacon's client.",
                hint="Add 'django.contrib.staticfiles' (README, 'Static files').",
                id="beacon.W007",
            )
        )
    if _layer_backend().endswith("core.RedisChannelLayer"):
        messages.append(
            Warning(
                "channels_redis's core layer drops group messages past its capacity; "
                "Beacon recovers them from the log, but the pubsub layer is faster here.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer.",
                id="beacon.W002",
            )
        )
    from .presence import redis_url

    if _layer_backend().startswith("channels_redis.") and not redis_url():
        messages.append(
            Warning(
                "The channel layer is Redis (several processes) but presence has no Redis "
                "URL: each process would see only its own sockets' presence.",
                hint="Set BEACON['REDIS_URL'] (or give the layer 'hosts' as redis:// URLs).",
                id="beacon.W004",
            )
        )
    return messages


@register(Tags.security, deploy=True)
def check_deploy(app_configs: Any, **kwargs: Any) -> list[Any]:
    """``check --deploy``: settings fine for ``make demo`` but not for production."""
    messages: list[Any] = []
    if _layer_backend().endswith("InMemoryChannelLayer"):
        messages.append(
            Warning(
                "The channel layer is in memory: events published by another process "
                "(a Celery worker, a management command, a second server process) reach "
                "open sockets only through the log watcher, and presence stays per process.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer in production.",
                id="beacon.W005",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        messages.append(
            Warning(
                "ALLOWED_HOSTS contains '*': Django accepts any Host header, and Beacon's "
                "WebSocket origin check trusts the hosts it allows, so another site's "
                "page may open a socket with a signed-in user's cookie.",
                hint="List the site's own host names in ALLOWED_HOSTS.",
                id="beacon.W006",
            )
        )
    return messages
