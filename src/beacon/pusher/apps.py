"""Pusher apps from settings: ``BEACON["PUSHER_APPS"]``, a list of dicts.

::

    BEACON = {"PUSHER_APPS": [{
        "id": "100001", "key": "app-key", "secret": "…",   # id: digits, as the SDKs check
        "client_events": True,            # client-* events on private/presence channels
        "webhook_url": "https://…/pusher/webhooks",   # optional
    }]}

Every other field has a default (:data:`APP_DEFAULTS`). :func:`parse_apps` is pure;
``core.get_apps`` reads the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .mapping import DEFAULT_RULES, Rule, compile_rules

APP_DEFAULTS: dict[str, Any] = {
    "client_events": False,
    "webhook_url": None,
    # Which webhooks to send (Pusher's names); all of them by default.
    "webhook_events": [
        "channel_occupied",
        "channel_vacated",
        "member_added",
        "member_removed",
        "client_event",
    ],
    # The stream namespace of channels no rule maps (a registered policy authorizes it).
    "namespace": "pusher",
    # ``[regex, template]`` pairs applied to a channel's body (see ``mapping``).
    "channels": DEFAULT_RULES,
    # Seconds of silence after which pusher-js pings (Pusher's default is 120).
    "activity_timeout": 120,
    # Pusher's limits, configurable.
    "max_presence_members": 100,
    "max_user_info_bytes": 1024,
    "max_event_bytes": 10 * 1024,
    "max_batch_events": 10,
    "max_trigger_channels": 100,
    "max_message_bytes": 64 * 1024,
    # Client events per second (burst: twice that) per user on one server process.
    "client_event_rate": 10.0,
    # Frames per second (burst: twice that) per socket before it is closed (4200 range: no).
    "frame_rate": 40.0,
    # Seconds a cache channel's last event stays "cached" (Pusher: 30 minutes).
    "cache_ttl": 1800,
    # Dotted path of ``f(user) -> dict``: the ``user_info`` of presence members and sign-in.
    "user_info": "beacon.pusher.core.default_user_info",
}

_ID = re.compile(r"[0-9]+")
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass(frozen=True)
class App:
    id: str
    key: str
    secret: str
    client_events: bool = False
    webhook_url: str | None = None
    webhook_events: frozenset[str] = frozenset()
    namespace: str = "pusher"
    rules: list[Rule] = field(default_factory=list, compare=False)
    activity_timeout: int = 120
    max_presence_members: int = 100
    max_user_info_bytes: int = 1024
    max_event_bytes: int = 10 * 1024
    max_batch_events: int = 10
    max_trigger_channels: int = 100
    max_message_bytes: int = 64 * 1024
    client_event_rate: float = 10.0
    frame_rate: float = 40.0
    cache_ttl: float = 1800
    user_info: str = APP_DEFAULTS["user_info"]


class AppConfigError(ValueError):
    pass


def parse_app(raw: dict[str, Any]) -> App:
    unknown = set(raw) - set(APP_DEFAULTS) - {"id", "key", "secret"}
    if unknown:
        raise AppConfigError(f"unknown PUSHER_APPS fields {sorted(unknown)}")
    merged = {**APP_DEFAULTS, **raw}
    app_id, key, secret = str(merged.get("id", "")), merged.get("key"), merged.get("secret")
    if not _ID.fullmatch(app_id):
        raise AppConfigError(f"a Pusher app id must be digits (the SDKs check), not {app_id!r}")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise AppConfigError(f"app {app_id}: 'key' must be 1-128 of A-Z a-z 0-9 _ . -")
    if not isinstance(secret, str) or not secret:
        raise AppConfigError(f"app {app_id}: 'secret' must be a non-empty string")
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,23}", str(merged["namespace"])):
        raise AppConfigError(f"app {app_id}: 'namespace' must be a stream namespace")
    try:
        rules = compile_rules(merged["channels"])
    except (re.error, ValueError, TypeError) as exc:
        raise AppConfigError(f"app {app_id}: bad 'channels' rule: {exc}") from None
    return App(
        id=app_id,
        key=key,
        secret=secret,
        client_events=bool(merged["client_events"]),
        webhook_url=merged["webhook_url"] or None,
        webhook_events=frozenset(merged["webhook_events"]),
        namespace=merged["namespace"],
        rules=rules,
        activity_timeout=int(merged["activity_timeout"]),
        max_presence_members=int(merged["max_presence_members"]),
        max_user_info_bytes=int(merged["max_user_info_bytes"]),
        max_event_bytes=int(merged["max_event_bytes"]),
        max_batch_events=int(merged["max_batch_events"]),
        max_trigger_channels=int(merged["max_trigger_channels"]),
        max_message_bytes=int(merged["max_message_bytes"]),
        client_event_rate=float(merged["client_event_rate"]),
        frame_rate=float(merged["frame_rate"]),
        cache_ttl=float(merged["cache_ttl"]),
        user_info=str(merged["user_info"]),
    )


@dataclass(frozen=True)
class Apps:
    by_id: dict[str, App]
    by_key: dict[str, App]


def parse_apps(raw: list[dict[str, Any]]) -> Apps:
    apps = [parse_app(a) for a in raw]
    by_id = {a.id: a for a in apps}
    by_key = {a.key: a for a in apps}
    if len(by_id) != len(apps) or len(by_key) != len(apps):
        raise AppConfigError("PUSHER_APPS: app ids and keys must be unique")
    if len({a.namespace for a in apps}) != len(apps):
        raise AppConfigError("PUSHER_APPS: each app needs its own 'namespace'")
    return Apps(by_id, by_key)
