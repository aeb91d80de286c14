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
from django.utils.encoding import force_str
from django.utils.functional import Promise

from . import eventlog, transport
from .eventlog import Appended
from .exceptions import PublishError, StreamError
from .models import Notification
from .protocol import check_event, event_frame
from .streams import parse_stream, policy_for, user_stream


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


def _check_notification(message: Any, data: dict[str, Any]) -> str:
    """The message as a plain string (a lazy translation is rendered now)."""
    if isinstance(message, Promise):
        message = force_str(message)
    if not isinstance(message, str):
        raise PublishError("a notification's message must be a string")
    if {"message", "unread"} & data.keys():
        raise PublishError("notification data may not use 'message' or 'unread'")
    check_event("notification", data)
    return message


def _user_id(user: Any) -> Any:
    """The pk of a user (or a user id); ``None`` and anonymous users are refused."""
    if user is None or getattr(user, "is_anonymous", False):
        raise PublishError("cannot notify an anonymous user (or None): pass a user or a user id")
    user_id = getattr(user, "pk", user)
    if user_id is None:
        raise PublishError("cannot notify an unsaved user (its pk is None)")
    return user_id


def _append_notification(user_id: Any, message: str, data: dict[str, Any]) -> Appended:
    from .readstate import unread_count

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
    message = _check_notification(message, data)
    user_id = _user_id(user)
    with transaction.atomic():
        event = _append_notification(user_id, message, data)
        deliver_on_commit([event])
    return event


def notify_many(users: Iterable[Any], message: str, **data: Any) -> list[Appended]:
    """Notify each of several users once, in one transaction and a handful of queries.

    Returns the events in the order of the users' stream names; they are delivered
    together after commit.
    """
    message = _check_notification(message, data)
    ids = {user_stream(user_id): user_id for user_id in map(_user_id, users)}

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
    check_stream(stream)
    frame = event_frame(type=type, stream=stream, data=data, ts=time.time())
    await transport.adeliver([(stream, None, frame)])
