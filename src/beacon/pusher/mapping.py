"""Which Beacon stream a Pusher channel is, and how a Beacon frame reads as a Pusher event.

Pure: no Django, no I/O. The mapping (see ``docs/pusher.md``):

1. ``#server-to-user-{id}`` is ``user:{id}``, the stream ``beacon.notify()`` writes.
2. Otherwise the channel's *body* — its name less ``private-``/``presence-`` and
   ``cache-`` — is matched against the app's rules, first match wins. A rule is
   ``(regex, template)``; the template is filled with the regex's named groups and
   must name a stream whose namespace has a registered policy. The default rule maps
   ``{namespace}.{key}`` onto ``{namespace}:{key}``: ``private-room.42`` and
   ``presence-room.42`` are the chat room ``room:42``, ``private-user.7`` is ``user:7``.
3. Anything else is a stream of the app's own namespace (``pusher`` by default), keyed by
   the whole channel name, so ``foo``, ``private-foo`` and ``cache-foo`` are three
   streams. A name that is not a valid stream key (longer than 64, or holding
   ``= @ , ;``) is keyed by its type prefix and ``_`` + a SHA-256 prefix; a name whose
   body starts with ``_`` is hashed too, so no verbatim name can collide with a hashed one.

Events keep their channel: a frame stored or sent through Pusher carries ``channel``
and ``event`` (and ``data`` as the string Pusher clients get), and reaches only that
channel's subscribers. A frame published through Beacon (``beacon.publish``) has no
``channel`` and reaches every channel that maps onto its stream.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .protocol import Channel, Kind, dumps

Rule = tuple[re.Pattern[str], str]

DEFAULT_RULES: list[tuple[str, str]] = [
    (r"(?P<namespace>[a-z][a-z0-9_-]{0,23})\.(?P<key>[A-Za-z0-9_.-]{1,64})", "{namespace}:{key}"),
]

_STREAM = re.compile(r"(?P<namespace>[a-z][a-z0-9_-]{0,23}):(?P<key>[A-Za-z0-9_.-]{1,64})")
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")

#: Keys a Beacon frame has that are not the event's data.
FRAME_KEYS = frozenset({"type", "stream", "seq", "epoch", "ts"})
#: Keys Beacon adds to frames written through Pusher.
PUSHER_KEYS = frozenset({"event", "channel", "data", "exclude", "user_id"})


def compile_rules(rules: Iterable[Iterable[str]]) -> list[Rule]:
    compiled = []
    for pattern, template in rules:
        compiled.append((re.compile(pattern), template))
    return compiled


def stream_for(
    channel: Channel,
    rules: list[Rule],
    registered: Callable[[str], bool],
    fallback: str,
) -> str | None:
    """The stream of a channel; None for a server-to-user id that is no stream key."""
    if channel.kind is Kind.USER:
        return f"user:{channel.body}" if _KEY.fullmatch(channel.body) else None
    for pattern, template in rules:
        match = pattern.fullmatch(channel.body)
        if match is None:
            continue
        try:
            stream = template.format(**match.groupdict())
        except (KeyError, IndexError, ValueError):
            continue
        parsed = _STREAM.fullmatch(stream)
        if parsed and parsed["namespace"] != fallback and registered(parsed["namespace"]):
            return stream
    return f"{fallback}:{fallback_key(channel)}"


def fallback_key(channel: Channel) -> str:
    name = channel.name
    if _KEY.fullmatch(name) and not channel.body.startswith("_"):
        return name
    prefix = name[: len(name) - len(channel.body)]
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"{prefix}_{digest[: 63 - len(prefix)]}"


def fallback_kind(key: str) -> Kind:
    """The kind of channel a fallback key stands for (a policy's view of the key)."""
    for prefix, kind in (("private-", Kind.PRIVATE), ("presence-", Kind.PRESENCE)):
        if key.startswith(prefix):
            return kind
    return Kind.PUBLIC


# -- Beacon frame -> Pusher event ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A Beacon frame as Pusher sees it."""

    event: str
    data: str
    #: Only for subscribers of this channel (None: every channel mapped to the stream).
    channel: str | None = None
    #: Not for the socket with this id (``socket_id`` of a trigger, a client event's sender).
    exclude: str | None = None
    user_id: str | None = None
    ts: float | None = None
    #: The Beacon stream the frame is of.
    stream: str | None = None


#: Beacon control frames, never sent to Pusher clients as events.
CONTROL = frozenset(
    {"welcome", "subscribed", "unsubscribed", "pong", "ping", "ack", "error", "presence"}
)


@lru_cache(maxsize=4096)
def read_frame(text: str) -> Event | None:
    """The Pusher event of a Beacon frame (cached: the hub offers one text to many sockets)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if not isinstance(kind, str) or kind in CONTROL:
        return None
    ts = obj.get("ts") if isinstance(obj.get("ts"), int | float) else None
    stream = _str_or_none(obj.get("stream"))
    name = obj.get("event")
    if isinstance(name, str) and isinstance(obj.get("data"), str):
        return Event(
            event=name,
            data=obj["data"],
            channel=_str_or_none(obj.get("channel")),
            exclude=_str_or_none(obj.get("exclude")),
            user_id=_str_or_none(obj.get("user_id")),
            ts=ts,
            stream=stream,
        )
    data = {k: v for k, v in obj.items() if k not in FRAME_KEYS}
    return Event(event=kind, data=dumps(data), ts=ts, stream=stream)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def beacon_type(event: str) -> str:
    """The Beacon ``type`` of a Pusher event: its name if Beacon takes it, else ``pusher``."""
    if 0 < len(event) <= 64 and event not in CONTROL:
        return event
    return "pusher"


def beacon_data(
    event: str, channel: str, data: str, *, exclude: str | None = None, user_id: str | None = None
) -> dict[str, Any]:
    """The Beacon event data of a Pusher event (``read_frame`` reads it back)."""
    out: dict[str, Any] = {"event": event, "channel": channel, "data": data}
    if exclude:
        out["exclude"] = exclude
    if user_id is not None:
        out["user_id"] = user_id
    return out
