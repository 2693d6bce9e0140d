from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin import UserAdmin
from accounts.models import User
from core.errors import ApiError
from rooms.models import AuditEntry, Invite, Membership, Room, RoomBan, RoomMute
from rooms.moderation import ban_user, deactivate_user, mute_user, unban_user, unmute_user
from rooms.sanctions import active


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


# --- moderation ----------------------------------------------------------------------------------
#
# Bans, mutes and deactivations are made and lifted only through rooms/moderation.py, so each one
# has its audit entry and its effects (a ban removes the member, a mute is copied onto the
# membership, a deactivation revokes every token and socket); the audit log itself is read-only.


def staff_user(request: HttpRequest) -> User:
    """The signed-in user of an admin view (the admin lets only active staff in)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


class RoomFilter(admin.SimpleListFilter):
    """By room, typed as its id or its name (case ignored) instead of picked from a list: a site
    has more rooms than a sidebar can show, and listing them would read them all on every page."""

    title = "room"
    parameter_name = "room"
    template = "admin/messaging/room_filter.html"
    placeholder = "Room id or name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        named = Q(room__name__iexact=value)
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return queryset.filter(named | Q(room_id=int(value)))
        return queryset.filter(named)

    def choices(self, changelist: Any) -> Iterator[Any]:
        # What templates/admin/messaging/room_filter.html shows besides its one choice: the page's
        # other parameters, kept by the typed filter's form.
        self.hidden_params = [(k, v) for k, v in changelist.params.items() if k not in (self.parameter_name, "p")]
        value = self.value() or ""
        yield {
            "selected": bool(value),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": value,
        }


class InForceFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("in_force", "In force"), ("ended", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "in_force":
            return active(queryset)
        if self.value() == "ended":
            return queryset.filter(expires_at__lte=timezone.now())
        return queryset


DURATIONS = [
    ("", "Until lifted"),
    (str(3600), "1 hour"),
    (str(24 * 3600), "1 day"),
    (str(7 * 24 * 3600), "1 week"),
    (str(30 * 24 * 3600), "30 days"),
    (str(365 * 24 * 3600), "1 year"),
]


class SanctionAddForm(forms.ModelForm):
    """The add form of a ban or a mute. Once its fields are valid the service makes the sanction
    (with its audit entry and its effects) instead of the form saving a row; a refusal of the
    service (an owner, someone of equal rank, a direct room...) is the form's error. The
    service also decides what the table's unique (room, user) means: a second ban replaces the first."""

    duration_seconds = forms.TypedChoiceField(
        choices=DURATIONS, coerce=int, empty_value=None, required=False, label="Duration"
    )
    actor: User  # set for each request by SanctionAdmin.get_form

    def make(self, data: dict[str, Any]) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        # Instead of ModelForm's model validation (the service validates) and before save().
        if self.errors:
            return
        try:
            self.instance = self.make(self.cleaned_data)
        except ApiError as error:
            self.add_error(None, error.detail)


class BanAddForm(SanctionAddForm):
    class Meta:
        model = RoomBan
        fields = ("room", "user", "reason")

    def make(self, data: dict[str, Any]) -> models.Model:
        return ban_user(
            actor=self.actor,
            room_id=data["room"].pk,
            user_id=data["user"].pk,
            reason=data.get("reason") or "",
            duration_seconds=data.get("duration_seconds"),
        )


class MuteAddForm(SanctionAddForm):
    class Meta:
        model = RoomMute
        fields = ("room", "user")

    def make(self, data: dict[str, Any]) -> models.Model:
        return mute_user(
            actor=self.actor,
            room_id=data["room"].pk,
            user_id=data["user"].pk,
            duration_seconds=data.get("duration_seconds"),
        )


class SanctionAdmin(admin.ModelAdmin):
    """Shared by bans and mutes: listed and viewed, added through the service, lifted by the "Lift"
    action through the service; never edited or deleted as rows (that would skip the audit log
    and, for a mute, leave the membership muted)."""

    add_form: type[SanctionAddForm]
    add_fields: tuple[str, ...]
    lift_service: Any
    list_filter = (InForceFilter, RoomFilter)
    list_select_related = ("room", "user", "created_by")
    search_fields = ("user__username", "room__name")
    search_help_text = "The user's username or the room's name."
    ordering = ("-created_at",)  # the admin adds -pk to break ties
    autocomplete_fields = ("room", "user")
    actions = ("lift",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fields if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("created_at",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form = type(form.__name__, (form,), {"actor": staff_user(request)})
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """The add form's service call made and saved it already (and nothing is ever changed)."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_lift_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj: Any) -> bool:
        return obj.expires_at is None or obj.expires_at > timezone.now()

    @admin.action(description="Lift the selected %(verbose_name_plural)s", permissions=["lift"])
    def lift(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = staff_user(request)
        lifted = 0
        for sanction in queryset.select_related("room", "user"):
            try:
                self.lift_service(actor=actor, room_id=sanction.room_id, user_id=sanction.user_id)
            except ApiError as error:
                self.message_user(request, f"{sanction.user} in {sanction.room}: {error.detail}", messages.ERROR)
            else:
                lifted += 1
        if lifted:
            self.message_user(request, f"Lifted {plural(lifted, str(self.opts.verbose_name))}.", messages.SUCCESS)


@admin.register(RoomBan)
class RoomBanAdmin(SanctionAdmin):
    add_form = BanAddForm
    add_fields = ("room", "user", "reason", "duration_seconds")
    lift_service = staticmethod(unban_user)
    list_display = ("user", "room", "reason", "created_by", "created_at", "expires_at", "in_force")


@admin.register(RoomMute)
class RoomMuteAdmin(SanctionAdmin):
    add_form = MuteAddForm
    add_fields = ("room", "user", "duration_seconds")
    lift_service = staticmethod(unmute_user)
    list_display = ("user", "room", "created_by", "created_at", "expires_at", "in_force")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only for everyone (superusers included): entries are written by the
    actions themselves, in their transactions, and nothing here adds, changes or deletes one."""

    list_display = ("created_at", "action", "room", "actor", "target_user", "message", "reason")
    list_filter = ("action", RoomFilter)
    list_select_related = ("room", "actor", "target_user")
    search_fields = ("actor__username",)
    search_help_text = "The username of who acted."
    ordering = ("-created_at",)  # the admin adds -pk to break ties
    show_full_result_count = False  # one COUNT of the filtered log is enough
    fields = ("created_at", "action", "room", "actor", "target_user", "message", "reason", "data")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    @admin.display(description="message")
    def message(self, entry: AuditEntry) -> str:
        if not entry.message_id:
            return "-"
        try:  # the Messages page is the message core's (messaging/admin.py), named, not imported
            url = reverse("admin:messaging_message_change", args=[entry.message_id])
        except NoReverseMatch:
            return entry.message_id
        quoted = str((entry.data or {}).get("excerpt") or "")
        text = f"“{quoted[:60]}…”" if len(quoted) > 60 else f"“{quoted}”" if quoted else entry.message_id
        return format_html('<a href="{}" title="{}">{}</a>', url, entry.message_id, text)


# --- accounts ------------------------------------------------------------------------------------


class ModeratedUserAdmin(UserAdmin):
    """accounts.admin's UserAdmin, with deactivation through rooms.moderation.deactivate_user (the
    accounts app cannot import rooms): unchecking "Active" in the change form and the "Deactivate"
    action both end every token and socket and write the audit entry."""

    actions = ("deactivate",)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # the other changes are saved as they are; the service deactivates
        super().save_model(request, obj, form, change)
        if deactivating:
            try:
                deactivate_user(actor=staff_user(request), user_id=obj.pk)
            except ApiError as error:
                self.message_user(request, f"{error.detail} {obj.username} stays active.", messages.ERROR)
            else:
                obj.is_active = False

    @admin.action(description="Deactivate the selected users", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = staff_user(request)
        done = 0
        for user in queryset.filter(is_active=True):
            try:
                deactivate_user(actor=actor, user_id=user.pk)
            except ApiError as error:
                self.message_user(request, f"{user.username}: {error.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Deactivated {plural(done, 'user')}.", messages.SUCCESS)


admin.site.unregister(User)
admin.site.register(User, ModeratedUserAdmin)
