"""Read receipts and unread counts of chat rooms.

A member's read position is ``Membership.last_read_seq``; a room's unread count is
``last_seq - last_read_seq`` (every durable event in a room is a message, and posting
marks the author's own message read). Changes are told two ways, both ephemeral:

* a ``receipt`` event ``{user, name, up_to}`` on the room's stream, for the members
  who have the room open ("seen by …");
* an ``unread`` event ``{room, name, private, last_seq, last_read, unread}`` on each
  affected member's room-list stream ``rooms:{user_id}``, so room lists (and other tabs)
  update without subscribing to every room.

Ephemeral events can be missed (a reconnect). Both carry absolute values, never
deltas, and a fresh subscribe returns the whole state, so the next event or the
next subscribe puts a client right.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from beacon import eventlog
from beacon.fanout import relay as transport
from beacon.fanout.relay import Item
from beacon.presence import display_name
from beacon.protocol import check_event, event_frame

from .models import Membership, Room, room_list_stream, room_stream


def last_seq(room_id: Any) -> int:
    position = eventlog.position(room_stream(room_id), create=False)
    return position.last_seq if position else 0


def room_entry(room: Room, *, seq: int, last_read: int) -> dict[str, Any]:
    """One room as room lists show it."""
    return {
        "room": room.pk,
        "name": room.name,
        "private": room.is_private,
        "last_seq": seq,
        "last_read": last_read,
        "unread": max(0, seq - last_read),
    }


def room_list(user: Any) -> list[dict[str, Any]]:
    """The rooms a user is a member of, with unread counts, by name."""
    memberships = list(Membership.objects.filter(user_id=user.pk).select_related("room"))
    seqs = eventlog.last_seqs(room_stream(m.room_id) for m in memberships)
    rooms = [
        room_entry(m.room, seq=seqs.get(room_stream(m.room_id), 0), last_read=m.last_read_seq)
        for m in memberships
    ]
    return sorted(rooms, key=lambda r: (r["name"].lower(), r["room"]))


def unread_items(room: Room, rows: Iterable[tuple[Any, int]], seq: int) -> list[Item]:
    """``unread`` events for the room lists of members ``(user_id, last_read_seq)``."""
    now = time.time()
    items: list[Item] = []
    for user_id, last_read in rows:
        stream = room_list_stream(user_id)
        data = room_entry(room, seq=seq, last_read=last_read)
        check_event("unread", data)  # no reserved keys (``seq`` would read as this stream's)
        items.append((stream, None, event_frame(type="unread", stream=stream, data=data, ts=now)))
    return items


def receipt_item(room: Room, user: Any, up_to: int) -> Item:
    """The ``receipt`` event telling a room that ``user`` has read up to ``up_to``."""
    data = {"user": user.pk, "name": display_name(user), "up_to": up_to}
    check_event("receipt", data)
    frame = event_frame(type="receipt", stream=room.stream, data=data, ts=time.time())
    return (room.stream, None, frame)


def deliver_after_commit(items: list[Item]) -> None:
    if items:
        transaction.on_commit(lambda: transport.deliver(items))


def mark_read(room: Room, user: Any, up_to: int) -> int | None:
    """Move the user's read position forward to ``up_to`` (capped at the newest seq).

    Returns the new position, or None when it did not move (nothing is announced).
    """
    with transaction.atomic():
        up_to = min(up_to, last_seq(room.pk))
        moved = Membership.objects.filter(
            room=room, user_id=user.pk, last_read_seq__lt=up_to
        ).update(last_read_seq=up_to)
        if not moved:
            return None
        items = [receipt_item(room, user, up_to)]
        items += unread_items(room, [(user.pk, up_to)], last_seq(room.pk))
        deliver_after_commit(items)
    return up_to


def receipts(room: Room, limit: int) -> list[dict[str, Any]]:
    """The members' read positions, furthest first (at most ``limit``)."""
    rows = (
        Membership.objects.filter(room=room, last_read_seq__gt=0)
        .select_related("user")
        .order_by("-last_read_seq", "user_id")[:limit]
    )
    return [
        {"user": m.user_id, "name": display_name(m.user), "up_to": m.last_read_seq} for m in rows
    ]
