from django.contrib import admin

from rooms.models import Invite, Membership, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "role", "joined_at", "last_read_seq")
    readonly_fields = ("joined_at", "last_read_seq")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "is_private", "created_by", "created_at")
    list_filter = ("is_private",)
    search_fields = ("name", "description")
    raw_id_fields = ("created_by",)
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("room", "user", "role", "joined_at")
    list_filter = ("role",)
    search_fields = ("room__name", "user__username")
    raw_id_fields = ("room", "user")


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    """Moderators see who made which link and revoke one by setting `revoked_at`."""

    list_display = ("code", "room", "created_by", "created_at", "expires_at", "uses", "max_uses", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("room__name", "created_by__username", "code")
    raw_id_fields = ("room", "created_by")
    readonly_fields = ("code", "uses", "created_at")
