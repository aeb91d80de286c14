from django.contrib import admin

from .models import Event, Notification, Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("name", "epoch", "last_seq", "first_seq", "created_at")
    search_fields = ("name",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("stream", "seq", "type", "created_at")
    list_filter = ("type",)
    raw_id_fields = ("stream", "sender")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("user", "seq", "read_at")
    raw_id_fields = ("user", "event")
