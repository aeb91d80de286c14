"""Server-Sent Events: the wire format and the resume id. Pure: no Django, no I/O.

An SSE response (``GET /beacon/events/?stream=A&stream=B``, ``doors/sse.py``) carries
the same stored frames as the WebSocket, one per event::

    id: user:7@1a2b3c4d:42,room:3@5e6f7a8b:9
    event: notification
    data: {"type":"notification","stream":"user:7","seq":42,...}

The **id** names where the response stands in *every* one of its streams, not just
the stream of this event: ``stream@epoch:seq`` for each, joined by ``,``, in the
order of the request's ``stream`` parameters. The browser's ``EventSource`` sends
the last id it saw back as ``Last-Event-ID`` when it reconnects, so one id resumes
all the streams. Stream names hold no ``@`` or ``,`` and epochs no ``:``, so the
encoding splits without escapes. Its size is bounded: at most ``SSE_MAX_STREAMS``
entries (a request may not name more streams) of at most :data:`MAX_ENTRY_LENGTH`
characters each, and :func:`parse_id` refuses anything over :data:`MAX_ID_LENGTH`.

Events without a seq (typing, presence) carry no ``id:``: the browser keeps the last
one, which is still right. Comments (``: keep-alive``) keep proxies from timing out
an idle response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from .exceptions import StreamError
from .streams import parse_stream

#: ``namespace:key`` (at most 24 + 1 + 64) ``@`` epoch (at most 64) ``:`` seq (19 digits).
MAX_ENTRY_LENGTH = 89 + 1 + 64 + 1 + 19
#: The longest id accepted back: 24 entries (well above the default of 16 streams).
MAX_ID_LENGTH = 24 * (MAX_ENTRY_LENGTH + 1)

_EPOCH = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SEQ = re.compile(r"[0-9]{1,19}")


class Position(NamedTuple):
    """Where a reader is in one stream: the epoch and the last seq it has."""

    epoch: str
    seq: int


def encode_id(positions: Mapping[str, Position]) -> str:
    """The ``id:`` of an event: every stream's position, in the mapping's order."""
    return ",".join(f"{stream}@{epoch}:{seq}" for stream, (epoch, seq) in positions.items())


def parse_id(text: str) -> dict[str, Position]:
    """Read a ``Last-Event-ID`` back; ``ValueError`` if it is not one Beacon made."""
    if not text:
        return {}
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"an event id is at most {MAX_ID_LENGTH} characters")
    positions: dict[str, Position] = {}
    for entry in text.split(","):
        stream, at, rest = entry.partition("@")
        epoch, colon, seq = rest.rpartition(":")
        if not (at and colon and _EPOCH.fullmatch(epoch) and _SEQ.fullmatch(seq)):
            raise ValueError(f"malformed event id entry {entry[:100]!r}")
        try:
            parse_stream(stream)
        except StreamError:
            raise ValueError(f"malformed stream name in event id {stream[:100]!r}") from None
        positions[stream] = Position(epoch, int(seq))
    return positions


class FrameFields(NamedTuple):
    """What an SSE event needs from a stored frame: its ``event:`` and its position."""

    type: str
    stream: str | None
    seq: int | None
    epoch: str | None


@lru_cache(maxsize=512)
def frame_fields(frame: str) -> FrameFields:
    """Read a frame's type, stream, seq and epoch (cached: one frame goes to many readers)."""
    obj = json.loads(frame)
    seq = obj.get("seq")
    return FrameFields(
        type=str(obj.get("type", "message")),
        stream=obj.get("stream"),
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        epoch=obj.get("epoch"),
    )


def event_name(type: str) -> str:
    """An ``event:`` value: the frame's type, less any line break (it would end the field)."""
    return type.replace("\r", "").replace("\n", "") or "message"


def event(name: str, data: str, id: str | None = None) -> str:
    """One SSE event. ``data`` is one line of JSON (JSON text never holds a raw newline)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event_name(name)}\ndata: {data}\n\n"


def comment(text: str) -> str:
    """A comment line: ignored by ``EventSource``, it keeps the connection warm."""
    return f": {text}\n\n"


def retry(milliseconds: int) -> str:
    """How long ``EventSource`` waits before it reconnects (sent once per response)."""
    return f"retry: {int(milliseconds)}\n\n"
