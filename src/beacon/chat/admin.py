from django.contrib import admin

from .models import Membership, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ("user",)
    readonly_fields = ("joined_at", "last_read_seq")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "is_private", "member_count", "created_at")
    list_filter = ("is_private",)
    search_fields = ("name", "topic")
    raw_id_fields = ("created_by",)
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, room: Room) -> int:
        return room.memberships.count()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "room", "joined_at", "last_read_seq")
    list_filter = ("room",)
    search_fields = ("user__username", "room__name")
    raw_id_fields = ("user", "room")
