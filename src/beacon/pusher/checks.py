"""System checks of the Pusher door (ids in ``docs/checks.md``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

DEMO_SECRET = "demo-secret"


def _apps() -> tuple[Any, list[Any]]:
    from .apps import AppConfigError
    from .core import get_apps

    try:
        return get_apps(), []
    except AppConfigError as exc:
        return None, [Error(f"BEACON['PUSHER_APPS']: {exc}", id="beacon.E020")]
    except ImproperlyConfigured:  # an unknown BEACON key: beacon.E001 reports it
        return None, []


@register()
def check_pusher_apps(app_configs: Any, **kwargs: Any) -> list[Any]:
    from .core import registered

    apps, messages = _apps()
    for app in apps.by_id.values() if apps else []:
        if not registered(app.namespace):
            messages.append(
                Warning(
                    f"Pusher app {app.id}: no stream policy for namespace {app.namespace!r}; "
                    "channels no rule maps will be refused.",
                    hint="Register one with beacon.streams.register (see docs/pusher.md).",
                    id="beacon.W020",
                )
            )
    return messages


@register(Tags.security, deploy=True)
def check_pusher_secrets(app_configs: Any, **kwargs: Any) -> list[Any]:
    apps, _ = _apps()
    return [
        Error(
            f"Pusher app {app.id} uses the demo secret {DEMO_SECRET!r}.",
            hint="Set BEACON_PUSHER_SECRET (or the app's 'secret') to a long random value.",
            id="beacon.E021",
        )
        for app in (apps.by_id.values() if apps else [])
        if app.secret == DEMO_SECRET
    ]
