from typing import Any

from django.contrib import admin

from .models import Event, Notification, Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("name", "epoch", "last_seq", "first_seq", "created_at")
    search_fields = ("name",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: a row added, edited or deleted here would bypass sequencing (seq,
    stored frame, the stream's first and last seq). Retention is ``beacon_prune``'s."""

    list_display = ("stream", "seq", "type", "created_at")
    list_filter = ("type",)
    raw_id_fields = ("stream", "sender")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("user", "seq", "read_at")
    raw_id_fields = ("user", "event")
