"""One-time tickets: a row per ticket issued and not yet used (or expired).

Only a hash of the ticket is stored, so the table gives away no usable ticket; a
ticket is redeemed by deleting its row, which only one redeemer can do.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Ticket(models.Model):
    #: SHA-256 of the ticket text.
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: The session that asked for it, if one did: the socket ends when that session does.
    session_key = models.CharField(max_length=64, null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    #: When the credential that asked for it (a bearer token) expires, as Unix time.
    credential_expires = models.FloatField(null=True, blank=True)

    class Meta:
        app_label = "beacon"
        db_table = "beacon_ticket"

    def __str__(self) -> str:
        return f"ticket of user {self.user_id}"
