"""Notifications: a user's own stream, its unread count and its read state.

``notify`` appends a ``notification`` event to ``user:{id}`` and a ``Notification``
row (the read state) in one transaction; the frame carries ``unread``, the count
after this one. Marking read appends a ``read`` event to the user's stream, so every tab of the
user — and a tab that reconnects later — learns it in order with the notifications.
Every notification and ``read`` frame carries ``unread``, the user stream's counter
changed in the same statement that locks the stream (``Stream.unread``): no count of
rows, and the newest frame a tab has always holds the right count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.functional import Promise

from . import eventlog
from .db import database_call
from .eventlog import Appended, Position
from .exceptions import PublishError
from .models import Notification
from .protocol import check_event, one_read_target
from .publishing import deliver_on_commit
from .streams import StreamPolicy, is_canonical_pk, user_stream


def unread_count(user_id: Any) -> int:
    """The user's unread notifications (the stream's counter: one indexed row)."""
    position = eventlog.position(user_stream(user_id), create=False)
    return 0 if position is None else position.unread


def mark_read(user_id: Any, *, seq: int | None = None, up_to: int | None = None) -> Appended | None:
    """Mark one notification (``seq``) or all up to ``up_to`` read.

    Returns the ``read`` event — data ``{"read_seq": seq}`` or ``{"up_to": up_to}`` —
    or None when nothing was unread (no event is sent).
    """
    if not one_read_target(seq, up_to):
        raise ValueError("give exactly one of seq, up_to")
    unread = Notification.objects.filter(user_id=user_id, read_at__isnull=True)
    unread = unread.filter(seq=seq) if seq is not None else unread.filter(seq__lte=up_to)
    with transaction.atomic():
        # The rows this transaction really marked: a concurrent mark_read of the same
        # rows waits for ours and then marks none, so no row is subtracted twice.
        marked = unread.update(read_at=timezone.now())
        if not marked:
            return None
        data = {"read_seq": seq} if seq is not None else {"up_to": up_to}
        event = eventlog.append(user_stream(user_id), "read", data, unread=-marked)
        deliver_on_commit([event])
    return event


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
    return eventlog.append(
        user_stream(user_id),
        "notification",
        {"message": message, **data},
        unread=1,
        notification_for=user_id,
    )


def notify(user: Any, message: str, **data: Any) -> Appended:
    """Notify a user (or a user id): stored, counted unread, pushed to every open tab.

    The frame is the guide's ``{"type": "notification", "message": …}`` plus
    ``stream``, ``seq``, ``epoch``, ``ts``, ``unread`` (the count after this one) and
    ``data``'s keys.
    """
    message = _check_notification(message, data)
    user_id = _user_id(user)
    event = eventlog.append_now(
        user_stream(user_id),
        "notification",
        {"message": message, **data},
        unread=1,
        notification_for=user_id,
    )
    if event is not None:  # committed already (PostgreSQL, no transaction): deliver now
        deliver_on_commit([event])
        return event
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
    with transaction.atomic():
        body = {"message": message, **data}
        events = eventlog.append_to_each(
            "notification", dict.fromkeys(ids, body), unread=1, notification_for=ids
        )
        deliver_on_commit(events)
    return events


def send_notification(user_id: Any, message: str) -> Appended:
    """The guide's call, kept working: ``notify(user_id, message)``."""
    return notify(user_id, message)


async def anotify(user: Any, message: str, **data: Any) -> Appended:
    return await database_call(notify)(user, message, **data)


async def anotify_many(users: Iterable[Any], message: str, **data: Any) -> list[Appended]:
    return await database_call(notify_many)(list(users), message, **data)


class UserStreamPolicy(StreamPolicy):
    """``user:{id}``: a user's own notifications, for that user alone."""

    def is_canonical(self, key: str) -> bool:
        from django.contrib.auth import get_user_model

        return is_canonical_pk(get_user_model(), key)

    def can_subscribe(self, user: Any, key: str) -> bool:
        return bool(user.is_authenticated) and str(user.pk) == key

    def subscribe_state(self, user: Any, key: str) -> dict[str, Any]:
        return {"unread": unread_count(user.pk)}

    def subscribe_state_at(self, user: Any, key: str, position: Position) -> dict[str, Any] | None:
        """The count the subscribe just read with the position: no second query (unless
        a subclass says otherwise in its own ``subscribe_state``)."""
        if type(self).subscribe_state is not UserStreamPolicy.subscribe_state:
            return self.subscribe_state(user, key)
        return {"unread": position.unread}

    def mark_read(self, user: Any, key: str, *, seq: int | None, up_to: int | None) -> None:
        mark_read(user.pk, seq=seq, up_to=up_to)
