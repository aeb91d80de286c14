from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from beacon.eventlog import prune


class Command(BaseCommand):
    help = "Delete events past the retention window (BEACON RETENTION_EVENTS/RETENTION_DAYS)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"deleted {prune()} event(s)")
