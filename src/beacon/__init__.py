"""Beacon: real-time notifications and chat for Django, with nothing lost.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "anotify",
    "anotify_many",
    "apublish",
    "apublish_ephemeral",
    "mark_read",
    "notify",
    "notify_many",
    "publish",
    "publish_ephemeral",
    "send_notification",
    "unread_count",
]

_LAZY = {
    "anotify": "notifications",
    "anotify_many": "notifications",
    "apublish": "publishing",
    "apublish_ephemeral": "publishing",
    "notify": "notifications",
    "notify_many": "notifications",
    "publish": "publishing",
    "publish_ephemeral": "publishing",
    "send_notification": "notifications",
    "mark_read": "notifications",
    "unread_count": "notifications",
}


def __getattr__(name: str) -> Any:
    """Import lazily: ``import beacon`` must work before Django's apps are ready."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beacon' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"beacon.{module}"), name)
