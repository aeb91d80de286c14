from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from beacon.eventlog import prune_rows


class Command(BaseCommand):
    help = "Delete events past the retention window (BEACON RETENTION_EVENTS/RETENTION_DAYS)."

    def handle(self, *args: Any, **options: Any) -> None:
        pruned = prune_rows()
        line = f"deleted {pruned.events} event(s)"
        if pruned.cascaded:
            rows = ", ".join(f"{n} {label}" for label, n in sorted(pruned.cascaded.items()))
            line += f" and, with them, {rows} row(s)"
        self.stdout.write(line)
