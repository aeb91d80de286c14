"""Chat messages: checking and storing them, idempotently, in the room's stream.

A message is a durable ``message`` event on ``room:{id}``::

    {"type": "message", "stream": "room:3", "seq": 12, "epoch": "…", "ts": …,
     "text": "hello", "author": 7, "author_name": "alice", "client_id": "c-…"}

``client_id`` is chosen by the sending client. A resend with the same id by the same
author (after a reconnect, say) finds the stored event instead of storing another:
same seq, delivered once (``eventlog.append_once``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from beacon import eventlog
from beacon.eventlog import Appended
from beacon.exceptions import ProtocolError
from beacon.presence import display_name
from beacon.protocol import ErrorCode
from beacon.publishing import deliver_on_commit

from ..db import database_call
from .conf import get_chat_config
from .models import Membership, Room
from .readstate import deliver_after_commit, receipt_item, unread_items

MESSAGE = "message"


class InvalidMessage(ProtocolError):
    """Message content Beacon refuses (answered with an ``invalid_message`` error)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_MESSAGE, message)


def check_text(text: Any, *, max_length: int | None = None) -> str:
    """The text of a message, or ``InvalidMessage``: a non-blank string, not too long."""
    limit = max_length or get_chat_config()["MAX_MESSAGE_LENGTH"]
    if not isinstance(text, str):
        raise InvalidMessage("a message needs a 'text' string")
    if not text.strip():
        raise InvalidMessage("a message may not be empty")
    if len(text) > limit:
        raise InvalidMessage(f"a message may be at most {limit} characters long")
    return text


def check_data(data: dict[str, Any]) -> str:
    """The text of a client's ``publish`` data, which must be ``{"text": …}`` alone."""
    extra = set(data) - {"text"}
    if extra:
        raise InvalidMessage(f"a message has only 'text', not {sorted(extra)[:5]}")
    return check_text(data.get("text"))


def post_message(
    room: Room, user: Any, text: str, *, client_id: str | None = None
) -> tuple[Appended, bool]:
    """Store a message from ``user`` and deliver it after commit: ``(event, created)``.

    With a ``client_id`` already used by this author in this room, nothing is stored or
    sent again and the first event is returned (``created`` False). Posting marks the
    room read up to the new message for its author (with a ``receipt``), and tells every
    member's room list the new unread count. The caller checks that ``user`` may post here.
    """
    text = check_text(text)
    data = {"text": text, "author": user.pk, "author_name": display_name(user)}
    if client_id is not None:
        data["client_id"] = client_id
    stream = room.stream
    with transaction.atomic():
        if client_id is None:
            event, created = eventlog.append(stream, MESSAGE, data, sender_id=user.pk), True
        else:
            event, created = eventlog.append_once(
                stream, MESSAGE, data, sender_id=user.pk, client_id=client_id
            )
        if created:
            read = Membership.objects.filter(
                room=room, user_id=user.pk, last_read_seq__lt=event.seq
            ).update(last_read_seq=event.seq)
            members = Membership.objects.filter(room=room).values_list("user_id", "last_read_seq")
            deliver_on_commit([event])
            items = [receipt_item(room, user, event.seq)] if read else []
            deliver_after_commit(items + unread_items(room, members, event.seq))
    return event, created


async def apost_message(
    room: Room, user: Any, text: str, *, client_id: str | None = None
) -> tuple[Appended, bool]:
    return await database_call(post_message)(room, user, text, client_id=client_id)
