"""Publishing: write the event in the caller's transaction, deliver after commit.

``publish`` (and ``notify``, in ``notifications.py``, which builds on it) joins the
caller's transaction (``transaction.atomic`` nests as a savepoint). The frame is
serialized once, here, and the same text is stored, sent live and replayed. Delivery
is registered with ``transaction.on_commit``: a rollback delivers nothing, and no
reader can see an event before its row is visible.

Each synchronous function has an ``a``-prefixed async twin that runs it off the event
loop (``db.database_call``): one implementation, two faces.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from . import eventlog
from .db import database_call
from .eventlog import Appended
from .exceptions import PublishError, StreamError
from .fanout import relay as transport
from .protocol import check_event, event_frame
from .streams import parse_stream, policy_for


def check_stream(stream: str) -> None:
    """Refuse a stream nobody could ever receive: no policy, or a key it refuses.

    A malformed name stays a ``StreamError``."""
    parse_stream(stream)
    try:
        policy, key = policy_for(stream)
    except StreamError as exc:
        raise PublishError(f"cannot publish to {stream!r}: {exc}") from None
    if not policy.is_canonical(key):
        raise PublishError(f"cannot publish to {stream!r}: its policy refuses the key {key!r}")


def deliver_on_commit(events: Iterable[Appended]) -> None:
    items = [(e.stream, e.seq, e.frame) for e in events]
    transaction.on_commit(lambda: transport.deliver(items))


def publish(stream: str, type: str, data: dict[str, Any] | None = None) -> Appended:
    """Append an event to a stream; it is delivered once the transaction commits."""
    data = data or {}
    check_event(type, data)
    check_stream(stream)
    event = eventlog.append_now(stream, type, data)
    if event is not None:  # committed already (PostgreSQL, no transaction): deliver now
        deliver_on_commit([event])
        return event
    with transaction.atomic():
        event = eventlog.append(stream, type, data)
        deliver_on_commit([event])
    return event


def publish_ephemeral(stream: str, type: str, data: dict[str, Any] | None = None) -> None:
    """Send an event that is not stored and has no seq (typing, presence): best effort."""
    data = data or {}
    check_event(type, data)
    check_stream(stream)
    frame = event_frame(type=type, stream=stream, data=data, ts=time.time())
    transport.deliver([(stream, None, frame)])


async def apublish(stream: str, type: str, data: dict[str, Any] | None = None) -> Appended:
    return await database_call(publish)(stream, type, data)


async def apublish_ephemeral(stream: str, type: str, data: dict[str, Any] | None = None) -> None:
    data = data or {}
    check_event(type, data)
    check_stream(stream)
    frame = event_frame(type=type, stream=stream, data=data, ts=time.time())
    await transport.adeliver([(stream, None, frame)])
