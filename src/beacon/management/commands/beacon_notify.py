from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from beacon import notify
from beacon.fanout.relay import flush


class Command(BaseCommand):
    help = "Notify a user: stored in the log and pushed to every open tab."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("message")
        parser.add_argument("--url", default=None, help="a link the notification points to")

    def handle(
        self, *args: Any, username: str, message: str, url: str | None, **options: Any
    ) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        extra = {"url": url} if url else {}
        event = notify(user, message, **extra)
        flush()  # let the channel-layer send finish before the process exits
        self.stdout.write(f"notified {username}: {event.stream} seq {event.seq}")
