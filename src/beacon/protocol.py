"""The wire protocol: client frames in, server frames out. Pure: no Django, no I/O.

Every frame is one JSON object in one WebSocket text message.

* Client frames carry an ``op`` (``subscribe``, ``unsubscribe``, ``ping``, ``read``,
  ``publish``, ``typing``) and an optional ``id`` that the server echoes as ``ref``
  in the answer, so a client can match replies to requests.
* Server frames carry a ``type``. Control frames use the names in
  :data:`CONTROL_TYPES`; every other ``type`` is an event published by the app,
  flattened: ``{"type": "notification", "stream": "user:7", "seq": 3, "epoch": "…",
  "ts": 1700000000.0, "message": "…", …data}``. That is the guide's frame plus
  ``stream``/``seq``/``epoch``, so the same text serves ``ws/`` and ``ws/notifications/``
  and is serialized once, at publish time.

:func:`parse_client_frame` turns text into one of the frozen dataclasses below or
raises :class:`~beacon.exceptions.ProtocolError` with the error frame's code; the
table in ``docs/protocol.md`` lists every code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .exceptions import ProtocolError

PROTOCOL_VERSION = 1

# Server frame types that events may not use.
CONTROL_TYPES = frozenset(
    {"welcome", "subscribed", "unsubscribed", "pong", "ping", "ack", "error", "presence", "close"}
)
# Keys Beacon puts on every event frame; event data may not use them.
RESERVED_KEYS = frozenset({"type", "stream", "seq", "epoch", "ts"})


class CloseCode(IntEnum):
    """WebSocket close codes Beacon sends (Daphne passes only 1000 and 3000-4999)."""

    NORMAL = 1000
    #: No authenticated user on the handshake. Final: the client stops reconnecting.
    UNAUTHENTICATED = 4001
    #: The user may not use this endpoint. Final.
    FORBIDDEN = 4003
    #: Too many frames too fast. Reconnect after backing off.
    RATE_LIMITED = 4008
    #: A frame over the size limit. Reconnect; do not resend it.
    FRAME_TOO_LARGE = 4009
    #: Beacon failed in a way it could not answer with an error frame. Reconnect.
    INTERNAL_ERROR = 4011
    #: The server process is restarting. Reconnect with jitter (another process answers).
    SERVER_RESTART = 4012
    #: The socket could not keep up with its streams. Reconnect and resume.
    TOO_SLOW = 4013
    #: The credential (a bearer token, or the token a ticket came from) expired, or
    #: was already expired at the handshake: get a new one, then reconnect.
    CREDENTIAL_EXPIRED = 4401
    #: The user already has ``MAX_CONNECTIONS_PER_USER`` sockets open. Back off.
    TOO_MANY_CONNECTIONS = 4429


#: Close codes after which a client must not reconnect on its own.
FINAL_CLOSE_CODES = frozenset({CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN})


class ErrorCode:
    """The ``code`` of ``error`` frames."""

    BAD_JSON = "bad_json"  # not JSON, or nested deeper than allowed
    BAD_FRAME = "bad_frame"  # JSON, but not an object with the fields an op needs
    UNKNOWN_OP = "unknown_op"
    INVALID_STREAM = "invalid_stream"  # malformed stream name
    UNKNOWN_STREAM = "unknown_stream"  # no policy for the stream's namespace
    FORBIDDEN = "forbidden"
    NOT_SUBSCRIBED = "not_subscribed"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    INVALID_MESSAGE = "invalid_message"  # e.g. an empty chat message
    UNSUPPORTED = "unsupported"  # the stream does not take this op
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


Ref = int | str | None


@dataclass(frozen=True, kw_only=True)
class Subscribe:
    stream: str
    #: Resume point: the last seq the client has; ``None`` = start live, no replay.
    since: int | None = None
    epoch: str | None = None
    ref: Ref = None


@dataclass(frozen=True, kw_only=True)
class Unsubscribe:
    stream: str
    ref: Ref = None


@dataclass(frozen=True, kw_only=True)
class Ping:
    ref: Ref = None


@dataclass(frozen=True, kw_only=True)
class Read:
    """Mark read: one event (``seq``) or everything up to and including ``up_to``."""

    stream: str
    seq: int | None = None
    up_to: int | None = None
    ref: Ref = None


@dataclass(frozen=True, kw_only=True)
class Publish:
    """A client publish (chat message); ``client_id`` makes a resend idempotent."""

    stream: str
    type: str
    data: dict[str, Any]
    client_id: str
    ref: Ref = None


@dataclass(frozen=True, kw_only=True)
class Typing:
    stream: str
    ref: Ref = None


ClientFrame = Subscribe | Unsubscribe | Ping | Read | Publish | Typing

MAX_NAME_LENGTH = 200
MAX_CLIENT_ID_LENGTH = 64


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted up to ``limit + 1``."""
    depth = 0
    level: list[Any] = [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [
            child
            for item in containers
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _is_unicode(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_size(text: str) -> int:
    """The size of a text frame on the wire: its UTF-8 bytes, not its characters."""
    if text.isascii():  # O(1) in CPython, and the common case
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def parse_client_frame(text: str, *, max_depth: int = 16) -> ClientFrame:
    """Parse one client text frame, or raise ``ProtocolError``."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "frame must be a JSON object")
    ref = obj.get("id")
    if ref is not None and not _is_ref(ref):
        raise ProtocolError(ErrorCode.BAD_FRAME, "id must be a short string or an integer")
    if json_depth(obj, max_depth) > max_depth:
        raise ProtocolError(ErrorCode.BAD_JSON, f"frame nested deeper than {max_depth}", ref=ref)
    if has_lone_surrogate(obj):
        # JSON's "\ud800" escape decodes to a string that is not Unicode text: it could
        # be neither stored, nor sent back, nor logged as UTF-8.
        raise ProtocolError(ErrorCode.BAD_FRAME, "strings must be valid Unicode", ref=ref)
    op = obj.get("op")
    if not isinstance(op, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "frame needs an 'op' string", ref=ref)
    parser = _PARSERS.get(op)
    if parser is None:
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {op[:40]!r}", ref=ref)
    return parser(obj, ref)


def _is_ref(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**53) < value < 2**53
    return isinstance(value, str) and len(value) <= 64 and _is_unicode(value)


def _string(obj: dict[str, Any], key: str, ref: Ref, *, limit: int = MAX_NAME_LENGTH) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(
            ErrorCode.BAD_FRAME, f"'{key}' must be a non-empty string of at most {limit}", ref=ref
        )
    return value


def _seq(obj: dict[str, Any], key: str, ref: Ref) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"'{key}' must be a non-negative integer", ref=ref)
    return value


def _parse_subscribe(obj: dict[str, Any], ref: Ref) -> Subscribe:
    epoch = obj.get("epoch")
    if epoch is not None and (not isinstance(epoch, str) or len(epoch) > 64):
        raise ProtocolError(ErrorCode.BAD_FRAME, "'epoch' must be a string", ref=ref)
    return Subscribe(
        stream=_string(obj, "stream", ref), since=_seq(obj, "since", ref), epoch=epoch, ref=ref
    )


def _parse_unsubscribe(obj: dict[str, Any], ref: Ref) -> Unsubscribe:
    return Unsubscribe(stream=_string(obj, "stream", ref), ref=ref)


def _parse_ping(obj: dict[str, Any], ref: Ref) -> Ping:
    return Ping(ref=ref)


def one_read_target(seq: int | None, up_to: int | None) -> bool:
    """A read names one event (``seq``) or everything up to one (``up_to``): exactly one."""
    return (seq is None) != (up_to is None)


def _parse_read(obj: dict[str, Any], ref: Ref) -> Read:
    seq, up_to = _seq(obj, "seq", ref), _seq(obj, "up_to", ref)
    if not one_read_target(seq, up_to):
        raise ProtocolError(
            ErrorCode.BAD_FRAME, "read needs exactly one of 'seq', 'up_to'", ref=ref
        )
    return Read(stream=_string(obj, "stream", ref), seq=seq, up_to=up_to, ref=ref)


def _parse_publish(obj: dict[str, Any], ref: Ref) -> Publish:
    data = obj.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "'data' must be an object", ref=ref)
    event_type = _string(obj, "type", ref, limit=64)
    reason = reserved(event_type, data)
    if reason is not None:
        raise ProtocolError(ErrorCode.BAD_FRAME, reason, ref=ref)
    return Publish(
        stream=_string(obj, "stream", ref),
        type=event_type,
        data=data,
        client_id=_string(obj, "client_id", ref, limit=MAX_CLIENT_ID_LENGTH),
        ref=ref,
    )


def _parse_typing(obj: dict[str, Any], ref: Ref) -> Typing:
    return Typing(stream=_string(obj, "stream", ref), ref=ref)


_PARSERS: dict[str, Callable[[dict[str, Any], Ref], ClientFrame]] = {
    "subscribe": _parse_subscribe,
    "unsubscribe": _parse_unsubscribe,
    "ping": _parse_ping,
    "read": _parse_read,
    "publish": _parse_publish,
    "typing": _parse_typing,
}


# -- server frames -------------------------------------------------------------------


def dumps(obj: dict[str, Any]) -> str:
    """Serialize a server frame: compact, UTF-8 left as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def event_frame(
    *,
    type: str,
    stream: str,
    data: dict[str, Any],
    ts: float,
    seq: int | None = None,
    epoch: str | None = None,
) -> str:
    """The text of one event frame; ``seq``/``epoch`` are ``None`` for ephemeral events."""
    frame: dict[str, Any] = {"type": type, "stream": stream}
    if seq is not None:
        frame["seq"] = seq
        frame["epoch"] = epoch
    frame["ts"] = round(ts, 3)
    frame.update(data)
    return dumps(frame)


_EPOCH_KEY = ',"epoch":"'


def frame_epoch(frame: str) -> str | None:
    """The epoch of a durable event frame made by :func:`event_frame`, without parsing it.

    ``type`` and ``stream`` come first and are JSON strings, in which a quote is always
    escaped, so the first ``,"epoch":"`` is the frame's own key.
    """
    start = frame.find(_EPOCH_KEY)
    if start < 0:
        return None
    start += len(_EPOCH_KEY)
    end = frame.find('"', start)
    return frame[start:end] if end > 0 else None


def check_event(type: str, data: dict[str, Any]) -> None:
    """Raise ``PublishError`` for an event type or data keys the protocol reserves."""
    from .exceptions import PublishError

    if not isinstance(type, str) or not type or len(type) > 64:
        raise PublishError("event type must be a non-empty string of at most 64 characters")
    if not isinstance(data, dict):
        raise PublishError("event data must be a dict")
    reason = reserved(type, data)
    if reason is not None:
        raise PublishError(reason)


def reserved(type: str, data: dict[str, Any]) -> str | None:
    """Why the protocol reserves this event type or these data keys; None if it does not.

    The one rule behind both a client's ``publish`` frame and a server-side publish.
    """
    if type in CONTROL_TYPES:
        return f"event type {type!r} is reserved for control frames"
    clash = RESERVED_KEYS & data.keys()
    if clash:
        return f"event data may not use the reserved keys {sorted(clash)}"
    return None


def _with_ref(frame: dict[str, Any], ref: Ref) -> dict[str, Any]:
    if ref is not None:
        frame["ref"] = ref
    return frame


def welcome_frame(*, user_id: Any, heartbeat: float, max_frame: int) -> str:
    return dumps(
        {
            "type": "welcome",
            "version": PROTOCOL_VERSION,
            "user": user_id,
            "heartbeat": heartbeat,
            "max_frame": max_frame,
        }
    )


def subscribed_frame(
    *,
    stream: str,
    epoch: str,
    seq: int,
    recovered: bool,
    reason: str | None = None,
    state: dict[str, Any] | None = None,
    ref: Ref = None,
) -> str:
    frame: dict[str, Any] = {
        "type": "subscribed",
        "stream": stream,
        "epoch": epoch,
        "seq": seq,
        "recovered": recovered,
    }
    if reason is not None:
        frame["reason"] = reason
    if state:
        frame["state"] = state
    return dumps(_with_ref(frame, ref))


def unsubscribed_frame(*, stream: str, ref: Ref = None, reason: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "unsubscribed", "stream": stream}
    if reason is not None:
        frame["reason"] = reason
    return dumps(_with_ref(frame, ref))


def pong_frame(*, ref: Ref = None) -> str:
    return dumps(_with_ref({"type": "pong"}, ref))


PING_FRAME = dumps({"type": "ping"})


def ack_frame(*, ref: Ref = None, **fields: Any) -> str:
    return dumps(_with_ref({"type": "ack", **fields}, ref))


def error_frame(code: str, message: str, *, ref: Ref = None, stream: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if stream is not None:
        frame["stream"] = stream
    return dumps(_with_ref(frame, ref))
