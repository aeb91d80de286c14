"""Read state of notifications: unread counts and marking read, pushed live.

Marking read appends a ``read`` event to the user's stream, so every tab of the
user — and a tab that reconnects later — learns it in order with the notifications.
Every notification and ``read`` frame carries ``unread``, counted while the stream is
locked, so the newest frame a tab has always holds the right count.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from . import eventlog
from .eventlog import Appended
from .models import Notification
from .publishing import deliver_on_commit
from .streams import user_stream


def unread_count(user_id: Any) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def mark_read(user_id: Any, *, seq: int | None = None, up_to: int | None = None) -> Appended | None:
    """Mark one notification (``seq``) or all up to ``up_to`` read.

    Returns the ``read`` event — data ``{"read_seq": seq}`` or ``{"up_to": up_to}`` —
    or None when nothing was unread (no event is sent).
    """
    if (seq is None) == (up_to is None):
        raise ValueError("give exactly one of seq, up_to")
    unread = Notification.objects.filter(user_id=user_id, read_at__isnull=True)
    unread = unread.filter(seq=seq) if seq is not None else unread.filter(seq__lte=up_to)
    with transaction.atomic():
        if not unread.update(read_at=timezone.now()):
            return None
        data = {"read_seq": seq} if seq is not None else {"up_to": up_to}
        event = eventlog.append(
            user_stream(user_id), "read", data, enrich=lambda _: {"unread": unread_count(user_id)}
        )
        deliver_on_commit([event])
    return event
