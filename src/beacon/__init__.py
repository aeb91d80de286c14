"""Beacon: real-time notifications and chat for Django, with nothing lost.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BeaconError",
    "Forbidden",
    "ProtocolError",
    "PublishError",
    "StreamError",
    "StreamPolicy",
    "anotify",
    "anotify_many",
    "apublish",
    "apublish_ephemeral",
    "arevoke",
    "mark_read",
    "notify",
    "notify_many",
    "publish",
    "publish_ephemeral",
    "register",
    "revoke",
    "send_notification",
    "unread_count",
    "user_stream",
]

_LAZY = {
    "anotify": "publishing",
    "anotify_many": "publishing",
    "apublish": "publishing",
    "apublish_ephemeral": "publishing",
    "notify": "publishing",
    "notify_many": "publishing",
    "publish": "publishing",
    "publish_ephemeral": "publishing",
    "send_notification": "publishing",
    "mark_read": "readstate",
    "revoke": "identity.control",
    "arevoke": "identity.control",
    "unread_count": "readstate",
    # The extension API the docs teach (docs/howto-streams.md, docs/api.md).
    "StreamPolicy": "streams",
    "register": "streams",
    "user_stream": "streams",
    "BeaconError": "exceptions",
    "Forbidden": "exceptions",
    "ProtocolError": "exceptions",
    "PublishError": "exceptions",
    "StreamError": "exceptions",
}


def __getattr__(name: str) -> Any:
    """Import lazily: ``import beacon`` must work before Django's apps are ready."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beacon' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"beacon.{module}"), name)
