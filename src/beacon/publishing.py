"""Publishing: write the event in the caller's transaction, deliver after commit.

``publish``/``notify`` join the caller's transaction (``transaction.atomic`` nests as a
savepoint). The frame is serialized once, here, and the same text is stored, sent
live and replayed. Delivery is registered with ``transaction.on_commit``: a rollback
delivers nothing, and no reader can see an event before its row is visible.

Each synchronous function has an ``a``-prefixed async twin that runs it off the event
loop (``database_sync_to_async``): one implementation, two faces.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Count

from . import eventlog
from .eventlog import Appended
from .exceptions import PublishError
from .fanout import relay as transport
from .models import Notification
from .protocol import check_event, event_frame
from .streams import parse_stream, user_stream


def deliver_on_commit(events: Iterable[Appended]) -> None:
    items = [(e.stream, e.seq, e.frame) for e in events]
    transaction.on_commit(lambda: transport.deliver(items))


def publish(stream: str, type: str, data: dict[str, Any] | None = None) -> Appended:
    """Append an event to a stream; it is delivered once the transaction commits."""
    data = data or {}
    check_event(type, data)
    parse_stream(stream)
    with transaction.atomic():
        event = eventlog.append(stream, type, data)
        deliver_on_commit([event])
    return event


def publish_ephemeral(stream: str, type: str, data: dict[str, Any] | None = None) -> None:
    """Send an event that is not stored and has no seq (typing, presence): best effort."""
    data = data or {}
    check_event(type, data)
    parse_stream(stream)
    frame = event_frame(type=type, stream=stream, data=data, ts=time.time())
    transport.deliver([(stream, None, frame)])


def _check_notification(message: Any, data: dict[str, Any]) -> None:
    if not isinstance(message, str):
        raise PublishError("a notification's message must be a string")
    if {"message", "unread"} & data.keys():
        raise PublishError("notification data may not use 'message' or 'unread'")
    check_event("notification", data)


def _append_notification(user_id: Any, message: str, data: dict[str, Any]) -> Appended:
    from .notifications import unread_count

    event = eventlog.append(
        user_stream(user_id),
        "notification",
        {"message": message, **data},
        enrich=lambda seq: {"unread": unread_count(user_id) + 1},
    )
    Notification.objects.create(user_id=user_id, seq=event.seq, event_id=event.id)
    return event


def notify(user: Any, message: str, **data: Any) -> Appended:
    """Notify a user (or a user id): stored, counted unread, pushed to every open tab.

    The frame is the guide's ``{"type": "notification", "message": …}`` plus
    ``stream``, ``seq``, ``epoch``, ``ts``, ``unread`` (the count after this one) and
    ``data``'s keys.
    """
    _check_notification(message, data)
    user_id = getattr(user, "pk", user)
    with transaction.atomic():
        event = _append_notification(user_id, message, data)
        deliver_on_commit([event])
    return event


def notify_many(users: Iterable[Any], message: str, **data: Any) -> list[Appended]:
    """Notify each of several users once, in one transaction and a handful of queries.

    Returns the events in the order of the users' stream names; they are delivered
    together after commit.
    """
    _check_notification(message, data)
    ids = {user_stream(u): getattr(u, "pk", u) for u in users}

    def unread_after(seqs: dict[str, int]) -> dict[str, dict[str, Any]]:
        # Counted while the streams are locked, like notify's count: consistent with seq.
        counts = dict(
            Notification.objects.filter(user_id__in=ids.values(), read_at__isnull=True)
            .values_list("user_id")
            .annotate(n=Count("id"))
        )
        return {stream: {"unread": counts.get(ids[stream], 0) + 1} for stream in seqs}

    with transaction.atomic():
        body = {"message": message, **data}
        events = eventlog.append_to_each(
            "notification", dict.fromkeys(ids, body), enrich=unread_after
        )
        Notification.objects.bulk_create(
            [Notification(user_id=ids[e.stream], seq=e.seq, event_id=e.id) for e in events],
            batch_size=500,
        )
        deliver_on_commit(events)
    return events


def send_notification(user_id: Any, message: str) -> Appended:
    """The guide's call, kept working: ``notify(user_id, message)``."""
    return notify(user_id, message)


async def apublish(stream: str, type: str, data: dict[str, Any] | None = None) -> Appended:
    return await database_sync_to_async(publish)(stream, type, data)


async def anotify(user: Any, message: str, **data: Any) -> Appended:
    return await database_sync_to_async(notify)(user, message, **data)


async def anotify_many(users: Iterable[Any], message: str, **data: Any) -> list[Appended]:
    return await database_sync_to_async(notify_many)(list(users), message, **data)


async def apublish_ephemeral(stream: str, type: str, data: dict[str, Any] | None = None) -> None:
    data = data or {}
    check_event(type, data)
    parse_stream(stream)
    frame = event_frame(type=type, stream=stream, data=data, ts=time.time())
    await transport.adeliver([(stream, None, frame)])
