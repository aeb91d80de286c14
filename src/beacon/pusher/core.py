"""Everything the Pusher door takes from Beacon's core, in one place.

When the core moves (hub, outbox, identity), only these imports change.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from django.db import transaction

from ..conf import get_config
from ..db import database_call
from ..eventlog import events_after, events_before, position
from ..exceptions import StreamError
from ..fanout.consumer import HubConsumer
from ..fanout.hub import get_hub
from ..fanout.outbox import Outbox, Track
from ..identity.authenticators import token_user, verify_token
from ..identity.control import get_registry
from ..identity.core import Handshake, Identity, Refused, authenticators
from ..presence import Keeper, display_name, make_store
from ..protocol import PING_FRAME
from ..protocol import CloseCode as BeaconCloseCode
from ..publishing import apublish_ephemeral, publish, publish_ephemeral
from ..ratelimit import TokenBucket
from ..shutdown import draining
from ..shutdown import install as install_shutdown
from ..streams import StreamPolicy, policy_for, register
from .apps import Apps, parse_apps

__all__ = [
    "PING_FRAME",
    "BeaconCloseCode",
    "Handshake",
    "HubConsumer",
    "Identity",
    "Keeper",
    "Outbox",
    "Refused",
    "StreamError",
    "StreamPolicy",
    "TokenBucket",
    "Track",
    "apublish_ephemeral",
    "authenticators",
    "database_call",
    "draining",
    "events_after",
    "get_apps",
    "get_config",
    "get_hub",
    "get_registry",
    "install_shutdown",
    "last_event",
    "new_keeper",
    "policy_for",
    "position",
    "presence_members",
    "publish",
    "publish_ephemeral",
    "register",
    "registered",
    "token_user",
    "transaction",
    "verify_token",
]

_apps: dict[str, tuple[Any, Apps]] = {}


def get_apps() -> Apps:
    """The apps of ``BEACON["PUSHER_APPS"]`` (parsed again when the settings change)."""
    config = get_config()
    cached = _apps.get("apps")
    if cached is None or cached[0] is not config:
        cached = _apps["apps"] = (config, parse_apps(config["PUSHER_APPS"]))
    return cached[1]


def registered(namespace: str) -> bool:
    """Does a stream policy govern this namespace?"""
    try:
        policy_for(f"{namespace}:x")
    except StreamError:
        return False
    return True


def last_event(stream: str) -> tuple[int, str] | None:
    """The stream's newest stored ``(seq, frame)`` (cache channels)."""
    rows = events_before(stream, None, limit=1)
    return rows[0] if rows else None


def default_user_info(user: Any) -> dict[str, Any]:
    """``user_info`` of presence members and sign-in: the user's id and the name Beacon
    shows (Laravel Echo's ``here``/``joining``/``leaving`` pass only ``user_info``)."""
    pk = user.pk if isinstance(user.pk, int) else str(user.pk)  # a UUID is no JSON
    return {"id": pk, "name": display_name(user)}


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Keeper]] = (
    weakref.WeakKeyDictionary()
)


def new_keeper(kind: str, announce: Any) -> Keeper:
    """This event loop's presence keeper ``kind``, on Beacon's presence store (Redis when
    ``REDIS_URL`` is set): entries refreshed, expired ones swept, crash-safe."""
    loop = asyncio.get_running_loop()
    keepers = _keepers.setdefault(loop, {})
    keeper = keepers.get(kind)
    if keeper is None:
        ttl = float(get_config()["PRESENCE_TTL_SECONDS"])
        keeper = keepers[kind] = Keeper(make_store(), ttl, announce=announce)
    return keeper


async def presence_members(key: str) -> list[tuple[str, str]]:
    """Who is in a presence store entry set now, from any process (HTTP API reads)."""
    store = make_store()
    try:
        return await store.members(key)
    finally:
        await store.close()
