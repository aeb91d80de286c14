"""The event log and read state.

* :class:`Stream` — one row per stream: its ``epoch`` and ``last_seq``. Publishing
  bumps ``last_seq`` with an ``UPDATE`` that locks the row until commit, so within a
  stream commit order is seq order and seqs have no gaps (see ``eventlog``).
* :class:`Event` — one row per durable event, keeping the frame text exactly as sent.
* :class:`Notification` — a user's notification and whether it was read.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_epoch() -> str:
    """A fresh epoch: changes whenever a stream's history starts over."""
    return secrets.token_hex(4)


class Stream(models.Model):
    name = models.CharField(max_length=100, unique=True)
    epoch = models.CharField(max_length=16, default=new_epoch)
    last_seq = models.BigIntegerField(default=0)
    #: Oldest seq still in the log; ``beacon_prune`` moves it forward.
    first_seq = models.BigIntegerField(default=1)
    #: Unread notifications of a user stream, kept under the row lock by ``notify``,
    #: ``mark_read`` and ``beacon_prune`` (0 for other streams).
    unread = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @{self.last_seq}"


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=64)
    #: The frame text as delivered; replays send it unchanged.
    frame = models.TextField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Client-chosen id of a socket publish; a resend with the same id is not stored twice.
    client_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="beacon_event_stream_seq"),
            models.UniqueConstraint(
                fields=["stream", "sender", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="beacon_event_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stream_id}#{self.seq} {self.type}"


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="beacon_notifications"
    )
    seq = models.BigIntegerField()
    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="notification")
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="beacon_notification_user_seq")
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="beacon_notif_unread")]

    def __str__(self) -> str:
        return f"notification {self.user_id}#{self.seq}"


class Ticket(models.Model):
    """A one-time ticket (``beacon.identity``): a row per ticket issued and not yet used.

    Only a hash of the ticket is stored, so the table gives away no usable ticket; a
    ticket is redeemed by deleting its row, which only one redeemer can do.
    """

    #: SHA-256 of the ticket text.
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: The session that asked for it, if one did: the socket ends when that session does.
    session_key = models.CharField(max_length=64, null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    #: When the credential that asked for it (a bearer token) expires, as Unix time.
    credential_expires = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "beacon_ticket"

    def __str__(self) -> str:
        return f"ticket of user {self.user_id}"
