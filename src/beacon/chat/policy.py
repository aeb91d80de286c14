"""Who may do what in chat: the ``room`` and ``rooms`` stream policies.

``room:{id}`` — a room's messages (durable) and its presence, typing and read
receipts (ephemeral).

* **Private room**: only members may subscribe, read history, post, mark read.
* **Public room**: anyone signed in may. **Subscribing to a public room (or posting
  in it) makes you a member**, so it shows in your room list with an unread count
  from then on; reading its history over HTTP does not. Leave with the room API.
* A room that does not exist is refused like a private one (``forbidden``), so names
  do not reveal which rooms exist.
* Membership is checked on every subscribe, resume, publish and read; removing a
  member, leaving or deleting the room re-asks the policy for open subscriptions
  (``beacon.identity.revoke``, from ``signals``).

``rooms:{user_id}`` — a user's room list: for that user alone; no durable events,
only ``unread`` events (see ``readstate``) and the whole list in ``subscribed.state``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from beacon import presence
from beacon.eventlog import Appended
from beacon.exceptions import ProtocolError
from beacon.protocol import ErrorCode, Publish
from beacon.publishing import apublish_ephemeral
from beacon.streams import StreamPolicy, is_canonical_pk, register

from .conf import get_chat_config
from .messages import MESSAGE, check_data, post_message
from .models import Membership, Room, room_stream
from .readstate import last_seq, mark_read, receipts, room_list

log = logging.getLogger("beacon.chat")


def find_room(key: str) -> Room | None:
    if not (key.isascii() and key.isdigit()) or len(key) > 18:
        return None
    return Room.objects.filter(pk=int(key)).first()


def may_enter(room: Room | None, user: Any) -> bool:
    """Members may enter any room; anyone signed in may enter a public one."""
    if room is None or not getattr(user, "is_authenticated", False):
        return False
    return not room.is_private or room.is_member(user)


def enter(key: str, user: Any) -> Room | None:
    """The room if the user may enter it, made a member of a public one on the way."""
    room = find_room(key)
    if room is None or not may_enter(room, user):
        return None
    if not room.is_private:
        room.join(user)
    return room


class TypingThrottle:
    """At most one ``typing`` event per ``(stream, user)`` per interval. Pure; time passed in."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, Any], float] = {}

    def allow(self, stream: str, user_id: Any, now: float, interval: float) -> bool:
        key = (stream, user_id)
        if now - self.last.get(key, -interval) < interval:
            return False
        self.last[key] = now
        if len(self.last) > 10_000:  # forget the stale ones now and then
            self.last = {k: t for k, t in self.last.items() if now - t < interval}
        return True

    def reset(self, stream: str, user_id: Any) -> None:
        """The user sent a message: their next keystroke announces typing at once."""
        self.last.pop((stream, user_id), None)


typing_throttle = TypingThrottle()


@register("room")
class RoomPolicy(StreamPolicy):
    """``room:{id}``: see the module docstring."""

    def is_canonical(self, key: str) -> bool:
        return is_canonical_pk(Room, key)

    def can_subscribe(self, user: Any, key: str) -> bool:
        return may_enter(find_room(key), user)

    def can_publish(self, user: Any, key: str) -> bool:
        return self.can_subscribe(user, key)

    def can_read(self, user: Any, key: str) -> bool:
        return self.can_subscribe(user, key)

    def subscribe_state(self, user: Any, key: str) -> dict[str, Any]:
        """Runs right after ``can_subscribe`` allowed it: joins a public room."""
        room = enter(key, user)
        if room is None:  # membership changed in between
            return {}
        membership = Membership.objects.get(room=room, user_id=user.pk)
        seq = last_seq(room.pk)
        return {
            "room": {"id": room.pk, "name": room.name, "private": room.is_private},
            "last_read": membership.last_read_seq,
            "unread": max(0, seq - membership.last_read_seq),
            "receipts": receipts(room, get_chat_config()["MAX_RECEIPTS_IN_STATE"]),
            "typing_timeout": get_chat_config()["TYPING_TIMEOUT_SECONDS"],
        }

    def mark_read(self, user: Any, key: str, *, seq: int | None, up_to: int | None) -> None:
        """``read`` with ``up_to`` (or ``seq``: the same, everything up to it)."""
        room = enter(key, user)
        if room is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"not allowed to mark read {room_stream(key)}")
        mark_read(room, user, up_to if up_to is not None else seq or 0)

    def publish(self, user: Any, key: str, frame: Publish) -> Appended:
        if frame.type != MESSAGE:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED, f"rooms take only '{MESSAGE}' events", stream=frame.stream
            )
        text = check_data(frame.data)
        room = enter(key, user)
        if room is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"not allowed to publish to {frame.stream}")
        event, _ = post_message(room, user, text, client_id=frame.client_id)
        typing_throttle.reset(frame.stream, user.pk)
        return event

    async def joined(self, consumer: Any, key: str) -> None:
        stream = room_stream(key)
        try:
            present = await presence.join(stream, consumer)
        except Exception:
            log.exception("beacon: presence join failed on %s", stream)
            return
        consumer.outbox.offer(None, None, presence.snapshot_frame(stream, present))

    async def left(self, consumer: Any, key: str) -> None:
        await presence.leave(room_stream(key), consumer)

    async def typing(self, consumer: Any, key: str) -> None:
        """Announce "… is typing" to the room, at most once per interval per user."""
        config = get_chat_config()
        stream, user = room_stream(key), consumer.user
        if not typing_throttle.allow(
            stream, user.pk, time.monotonic(), config["TYPING_INTERVAL_SECONDS"]
        ):
            return
        data = {
            "user": user.pk,
            "name": presence.display_name(user),
            "expires": config["TYPING_TIMEOUT_SECONDS"],
        }
        await apublish_ephemeral(stream, "typing", data)


@register("rooms")
class RoomListPolicy(StreamPolicy):
    """``rooms:{user_id}``: a user's room list with unread counts, for that user alone."""

    def is_canonical(self, key: str) -> bool:
        from django.contrib.auth import get_user_model

        return is_canonical_pk(get_user_model(), key)

    def can_subscribe(self, user: Any, key: str) -> bool:
        return bool(getattr(user, "is_authenticated", False)) and str(user.pk) == key

    def subscribe_state(self, user: Any, key: str) -> dict[str, Any]:
        return {"rooms": room_list(user)}
