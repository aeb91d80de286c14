"""Pusher protocol 7 frames, codes and channel names. Pure: no Django, no I/O.

Read from pusher-js 8 (``src/core/connection/protocol/protocol.ts``, ``channels/*``)
and pusher-http-python 3.3 (``util.py``). A frame is a JSON object with ``event``,
optional ``channel`` and ``data``. Server frames carry ``data`` as a JSON-encoded
string, as Pusher sends it (mobile SDKs expect that), except ``pusher:error``, whose
``data`` is an object.

Close codes (pusher-js ``getCloseAction``): 4000-4099 final (the client stops),
4100-4199 reconnect after backing off, 4200-4299 reconnect at once. 43xx are only
ever ``pusher:error`` codes, never close codes.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

from ..protocol import json_depth

PROTOCOL_VERSION = 7
#: Oldest protocol accepted: 5 added ``pusher:error`` codes, 6 close codes, 7 is current.
MIN_PROTOCOL_VERSION = 5

CHANNEL_NAME = re.compile(r"[-a-zA-Z0-9_=@,.;]+")
MAX_CHANNEL_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200
SOCKET_ID = re.compile(r"\d+\.\d+")
SERVER_TO_USER_PREFIX = "#server-to-user-"


class CloseCode(IntEnum):
    APP_NOT_FOUND = 4001
    APP_DISABLED = 4003
    OVER_QUOTA = 4004
    PATH_NOT_FOUND = 4005
    INVALID_VERSION = 4006
    UNSUPPORTED_PROTOCOL = 4007
    NO_PROTOCOL = 4008
    UNAUTHORIZED = 4009
    #: Backoff range: over capacity (also: the server process is restarting).
    OVER_CAPACITY = 4100
    #: Reconnect at once: generic (a frame too large, too slow a reader, terminated).
    RECONNECT = 4200
    PONG_NOT_RECEIVED = 4201
    INACTIVITY = 4202


class ErrorCode(IntEnum):
    """``pusher:error`` codes that do not close the connection."""

    GENERIC = 4300
    CLIENT_EVENT_RATE_LIMIT = 4301


class FrameError(Exception):
    """A client frame that is answered with ``pusher:error`` (the socket stays open)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def new_socket_id() -> str:
    """``\\d+\\.\\d+``, unguessable (an auth signature is bound to it)."""
    return f"{secrets.randbelow(10**9) + 1}.{secrets.randbelow(10**9) + 1}"


def frame(event: str, data: Any = None, channel: str | None = None, **extra: Any) -> str:
    """A server frame; ``data`` that is not already a string is JSON-encoded into one."""
    out: dict[str, Any] = {"event": event}
    if channel is not None:
        out["channel"] = channel
    if data is not None:
        out["data"] = data if isinstance(data, str) else dumps(data)
    out.update(extra)
    return dumps(out)


def connection_established(socket_id: str, activity_timeout: int) -> str:
    return frame(
        "pusher:connection_established",
        {"socket_id": socket_id, "activity_timeout": activity_timeout},
    )


def error_frame(message: str, code: int | None = None) -> str:
    return dumps({"event": "pusher:error", "data": {"code": code, "message": message}})


PING = frame("pusher:ping", {})
PONG = frame("pusher:pong", {})


def subscription_succeeded(channel: str, presence: dict[str, Any] | None = None) -> str:
    return frame(
        "pusher_internal:subscription_succeeded",
        {"presence": presence} if presence is not None else {},
        channel,
    )


def presence_data(members: dict[str, Any]) -> dict[str, Any]:
    """``presence.ids/hash/count`` of ``subscription_succeeded`` (user id → user info)."""
    return {"ids": list(members), "hash": members, "count": len(members)}


def subscription_error(channel: str, status: int, error: str, type: str = "AuthError") -> str:
    """The shape pusher-js itself emits when its auth request fails."""
    return frame(
        "pusher:subscription_error", {"type": type, "error": error, "status": status}, channel
    )


def member_added(channel: str, user_id: str, user_info: Any) -> str:
    return frame(
        "pusher_internal:member_added", {"user_id": user_id, "user_info": user_info}, channel
    )


def member_removed(channel: str, user_id: str) -> str:
    return frame("pusher_internal:member_removed", {"user_id": user_id}, channel)


def cache_miss(channel: str) -> str:
    return frame("pusher:cache_miss", None, channel)


def signin_success(user_data: str) -> str:
    return frame("pusher:signin_success", {"user_data": user_data})


# -- the handshake ---------------------------------------------------------------------


def check_protocol(query: dict[str, list[str]]) -> CloseCode | None:
    """The close code for a handshake's ``protocol`` parameter, or None if it is fine."""
    values = query.get("protocol")
    if not values or not values[0]:
        return CloseCode.NO_PROTOCOL
    if not values[0].isdigit() or len(values[0]) > 4:
        return CloseCode.INVALID_VERSION
    if not MIN_PROTOCOL_VERSION <= int(values[0]) <= PROTOCOL_VERSION:
        return CloseCode.UNSUPPORTED_PROTOCOL
    return None


# -- channels --------------------------------------------------------------------------


class Kind(Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    PRESENCE = "presence"
    ENCRYPTED = "private-encrypted"
    USER = "server-to-user"


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    kind: Kind
    #: A ``cache-`` channel: the last event is sent on subscribe.
    cache: bool
    #: The name without its type and ``cache-`` prefixes (a user id for ``USER``).
    body: str

    @property
    def needs_auth(self) -> bool:
        return self.kind in (Kind.PRIVATE, Kind.PRESENCE, Kind.ENCRYPTED)

    @property
    def takes_client_events(self) -> bool:
        return self.kind in (Kind.PRIVATE, Kind.PRESENCE)


class ChannelNameError(ValueError):
    pass


_PREFIXES = (
    ("private-encrypted-cache-", Kind.ENCRYPTED, True),
    ("private-encrypted-", Kind.ENCRYPTED, False),
    ("presence-cache-", Kind.PRESENCE, True),
    ("private-cache-", Kind.PRIVATE, True),
    ("presence-", Kind.PRESENCE, False),
    ("private-", Kind.PRIVATE, False),
    ("cache-", Kind.PUBLIC, True),
)


def parse_channel(name: Any) -> Channel:
    """Classify a channel name, checked as Pusher checks it, or raise ``ChannelNameError``."""
    if not isinstance(name, str) or not name:
        raise ChannelNameError("channel must be a non-empty string")
    if len(name) > MAX_CHANNEL_LENGTH:
        raise ChannelNameError(f"channel name longer than {MAX_CHANNEL_LENGTH}")
    if name.startswith(SERVER_TO_USER_PREFIX):
        user = name[len(SERVER_TO_USER_PREFIX) :]
        if not CHANNEL_NAME.fullmatch(user):
            raise ChannelNameError("invalid server-to-user channel")
        return Channel(name, Kind.USER, False, user)
    if not CHANNEL_NAME.fullmatch(name):
        raise ChannelNameError("channel names may hold only a-z A-Z 0-9 and _ - = @ , . ;")
    for prefix, kind, cache in _PREFIXES:
        if name.startswith(prefix):
            body = name[len(prefix) :]
            if not body:
                raise ChannelNameError(f"channel name {prefix!r} has nothing after the prefix")
            return Channel(name, kind, cache, body)
    return Channel(name, Kind.PUBLIC, False, name)


# -- client frames ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    event: str
    channel: str | None
    data: Any


def parse_frame(text: str, max_depth: int = 16) -> Incoming:
    """One client text frame, or ``FrameError``. ``data`` may be an object or a string."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("frame is not valid JSON", ErrorCode.GENERIC) from None
    if not isinstance(obj, dict):
        raise FrameError("frame must be a JSON object", ErrorCode.GENERIC)
    event = obj.get("event")
    if not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME_LENGTH:
        raise FrameError("frame needs an 'event' string", ErrorCode.GENERIC)
    channel = obj.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise FrameError("'channel' must be a string", ErrorCode.GENERIC)
    data = obj.get("data")
    if json_depth(data, max_depth) > max_depth:
        raise FrameError(f"data nested deeper than {max_depth}", ErrorCode.GENERIC)
    return Incoming(event, channel, data)


def object_data(incoming: Incoming) -> dict[str, Any]:
    """``data`` of a ``pusher:*`` frame as an object (some clients send it encoded)."""
    data = incoming.data
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        raise FrameError(f"{incoming.event} needs an object 'data'", ErrorCode.GENERIC)
    return data


def client_event_data(data: Any) -> str:
    """A client event's ``data`` as the string other subscribers receive."""
    return data if isinstance(data, str) else dumps(data)
