"""Room lists hear about memberships made or removed elsewhere (the admin, say)."""

from __future__ import annotations

import time
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from beacon.protocol import event_frame

from .models import Membership, room_list_stream
from .readstate import deliver_after_commit, last_seq, unread_items


@receiver(post_save, sender=Membership)
def membership_added(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if created:
        room = instance.room
        seq = last_seq(room.pk)
        deliver_after_commit(unread_items(room, [(instance.user_id, instance.last_read_seq)], seq))


@receiver(post_delete, sender=Membership)
def membership_removed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    stream = room_list_stream(instance.user_id)
    frame = event_frame(
        type="removed", stream=stream, data={"room": instance.room_id}, ts=time.time()
    )
    deliver_after_commit([(stream, None, frame)])
