"""Room lists hear about memberships made or removed elsewhere (the admin, say), and
sockets lose rooms they may no longer read (``beacon.identity.revoke``): a member
removed or leaving, a room deleted."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from beacon.identity import revoke
from beacon.protocol import event_frame

from .models import Membership, Room, room_list_stream, room_stream
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
    if instance.room_id not in _deleting_rooms():  # a deleted room is revoked once, below
        revoke(room_stream(instance.room_id), user=instance.user_id)


_local = threading.local()


def _deleting_rooms() -> set[Any]:
    if not hasattr(_local, "rooms"):
        _local.rooms = set()
    return _local.rooms


@receiver(pre_delete, sender=Room)
def room_deleting(sender: Any, instance: Room, **kwargs: Any) -> None:
    _deleting_rooms().add(instance.pk)


@receiver(post_delete, sender=Room)
def room_deleted(sender: Any, instance: Room, **kwargs: Any) -> None:
    _deleting_rooms().discard(instance.pk)
    revoke(room_stream(instance.pk))
