"""Request parsing and the documented response shapes (the hot paths build dicts directly)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.serializers import UserSerializer
from rooms.models import AuditAction, EditHistoryVisibility, NotifyLevel, Role, RoomKind


class RoomCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    is_private = serializers.BooleanField(required=False, default=False)


class RoomUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    edit_history_visibility = serializers.ChoiceField(choices=EditHistoryVisibility.choices, required=False)
    slow_mode_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=6 * 3600, help_text="Members post at most once in this many seconds."
    )


class RoomSerializer(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=RoomKind.choices)
    members = UserSerializer(many=True, required=False, help_text="A direct room's people (direct rooms only).")
    name = serializers.CharField(help_text="A direct room's is the other members' names as the caller sees them.")
    description = serializers.CharField()
    is_private = serializers.BooleanField()
    created_by = UserSerializer()
    created_at = serializers.DateTimeField()
    member_count = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    unread_count = serializers.IntegerField(
        help_text="Others' messages among the newest UNREAD_COUNT_CAP (default 1000) unread ones."
    )
    last_seq = serializers.IntegerField()
    last_read_seq = serializers.IntegerField(help_text="The caller's read marker (0 for non-members).")
    edit_history_visibility = serializers.ChoiceField(choices=EditHistoryVisibility.choices)
    notify = serializers.ChoiceField(
        choices=NotifyLevel.choices,
        allow_null=True,
        help_text="The caller's notification level (null for non-members).",
    )
    muted = serializers.BooleanField(help_text="Whether the caller muted the room (no notices, no badge).")
    slow_mode_seconds = serializers.IntegerField(help_text="0: off.")


class RoomSettingsSerializer(serializers.Serializer):
    notify = serializers.ChoiceField(
        choices=NotifyLevel.choices,
        required=False,
        help_text="all: every message; mentions: mentions and replies; nothing. Default: all in direct rooms, "
        "mentions elsewhere.",
    )
    muted = serializers.BooleanField(required=False, help_text="No notices and no badge; unread_count stays true.")


class DirectRoomSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(), help_text="1 to 8 other users' ids.")


class DirectoryRoomSerializer(RoomSerializer):
    joined = serializers.BooleanField(help_text="Whether the caller is a member.")


class RoomDirectorySerializer(serializers.Serializer):
    results = DirectoryRoomSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class RoomListSerializer(serializers.Serializer):
    results = RoomSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class MemberSerializer(serializers.Serializer):
    user = UserSerializer()
    role = serializers.ChoiceField(choices=Role.choices)
    joined_at = serializers.DateTimeField()


class MemberAddSerializer(serializers.Serializer):
    user_id = serializers.CharField(required=False)
    username = serializers.CharField(required=False, help_text="Instead of user_id (case-insensitive).")
    role = serializers.ChoiceField(choices=Role.choices, required=False, default=Role.MEMBER)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ReadMarkerSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=0, max_value=2**53)


class InviteCreateSerializer(serializers.Serializer):
    max_uses = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000, help_text="None: unlimited.")
    expires_in = serializers.IntegerField(
        required=False, min_value=60, max_value=365 * 24 * 3600, help_text="Seconds from now; none: never."
    )


class InviteSerializer(serializers.Serializer):
    code = serializers.CharField()
    url = serializers.CharField(help_text="The web page that shows the invitation.")
    room_id = serializers.CharField()
    created_by = UserSerializer()
    expires_at = serializers.DateTimeField(allow_null=True)
    max_uses = serializers.IntegerField(allow_null=True)
    uses = serializers.IntegerField()


class InviteRoomSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    member_count = serializers.IntegerField()


class InvitePreviewSerializer(serializers.Serializer):
    room = InviteRoomSerializer()


class BanCreateSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    duration_seconds = serializers.IntegerField(required=False, help_text="Absent: until lifted.")


class BanSerializer(serializers.Serializer):
    room_id = serializers.CharField()
    user = UserSerializer()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class MuteCreateSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    duration_seconds = serializers.IntegerField(required=False, help_text="Absent: until lifted.")


class MuteSerializer(serializers.Serializer):
    room_id = serializers.CharField()
    user = UserSerializer()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    actor = UserSerializer(allow_null=True)
    target_user = UserSerializer(allow_null=True)
    message_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="What changed, by action (a role's from/to, a setting's new value, ...)."
    )
    created_at = serializers.DateTimeField()
