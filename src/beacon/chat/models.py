"""Rooms and who belongs to them.

* :class:`Room` — public (anyone signed in may join) or private (members only). Its
  messages are the durable events of the stream ``room:{id}`` (``Room.stream``).
* :class:`Membership` — a user in a room, with ``last_read_seq``: everything up to
  that seq of the room's stream is read. A room's unread count for a member is
  ``stream.last_seq - last_read_seq``; a new membership starts at the room's current
  seq (joining does not make old history unread).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def room_stream(room_id: Any) -> str:
    """The stream of a room (or room id)."""
    return f"room:{getattr(room_id, 'pk', room_id)}"


def room_list_stream(user_id: Any) -> str:
    """A user's room-list stream: unread counts of all their rooms, live."""
    return f"rooms:{getattr(user_id, 'pk', user_id)}"


class RoomQuerySet(models.QuerySet["Room"]):
    def visible_to(self, user: Any) -> RoomQuerySet:
        """Public rooms, and private rooms the user is a member of."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(Q(is_private=False) | Q(memberships__user=user)).distinct()


class Room(models.Model):
    name = models.CharField(max_length=100)
    topic = models.CharField(max_length=200, blank=True)
    is_private = models.BooleanField(
        default=False, help_text="Private rooms are for their members only."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="chat_rooms", blank=True
    )

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def stream(self) -> str:
        return room_stream(self.pk)

    def is_member(self, user: Any) -> bool:
        return bool(getattr(user, "is_authenticated", False)) and (
            self.memberships.filter(user_id=user.pk).exists()
        )

    def join(self, user: Any) -> Membership:
        """Make the user a member (idempotent); membership of private rooms is not checked
        here: callers decide who may join."""
        membership, _ = Membership.objects.get_or_create(room=self, user_id=user.pk)
        return membership


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    joined_at = models.DateTimeField(default=timezone.now)
    #: Everything up to this seq of the room's stream is read by this member.
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="beacon_chat_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.last_read_seq:
            from beacon.models import Stream

            current = (
                Stream.objects.filter(name=room_stream(self.room_id))
                .values_list("last_seq", flat=True)
                .first()
            )
            self.last_read_seq = current or 0
        super().save(*args, **kwargs)
