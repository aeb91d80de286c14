"""Chat rooms on Beacon's durable streams: ``INSTALLED_APPS += ["beacon.chat"]``.

A room is the stream ``room:{id}``, so its messages inherit ordering, resume and gap
filling. Presence, typing and read receipts travel as ephemeral events on the same
stream; each user's room list (``rooms:{user_id}``) hears unread counts change. The
wire format and a how-to are in ``docs/chat.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InvalidMessage",
    "Membership",
    "Room",
    "RoomListPolicy",
    "RoomPolicy",
    "apost_message",
    "post_message",
    "room_stream",
]

_LAZY = {
    "InvalidMessage": "messages",
    "apost_message": "messages",
    "post_message": "messages",
    "Membership": "models",
    "Room": "models",
    "room_stream": "models",
    "RoomListPolicy": "policy",
    "RoomPolicy": "policy",
}


def __getattr__(name: str) -> Any:
    """Import lazily: the app package is imported before Django's apps are ready."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beacon.chat' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"beacon.chat.{module}"), name)
