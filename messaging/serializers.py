"""Request parsing and the documented `Message` shape (built in payloads.py as MessagePayload; a test
keeps the two alike)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.serializers import UserSerializer
from files.serializers import AttachmentSerializer


class ReactionSerializer(serializers.Serializer):
    emoji = serializers.CharField()
    count = serializers.IntegerField()
    users = serializers.ListField(child=serializers.CharField())


class MentionsSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField())
    room = serializers.BooleanField(help_text="The message mentions @room (every member).")


class MessageSerializer(serializers.Serializer):
    id = serializers.CharField()
    room_id = serializers.CharField()
    seq = serializers.IntegerField()
    version = serializers.IntegerField()
    author = UserSerializer()
    body = serializers.CharField()
    html = serializers.CharField(help_text="The body's Markdown subset rendered and sanitised on the server.")
    mentions = MentionsSerializer()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    parent_id = serializers.CharField(allow_null=True)
    reply_count = serializers.IntegerField()
    last_reply_at = serializers.DateTimeField(allow_null=True)
    reactions = ReactionSerializer(many=True)
    attachments = AttachmentSerializer(many=True)
    client_id = serializers.CharField(allow_null=True)
    highlights = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        required=False,
        help_text="Search results only: [start, end) character ranges of `body` that matched.",
    )


class MessagePageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class MessagePostSerializer(serializers.Serializer):
    # Type and length rules live in the service (shared with WebSocket); these document the shape.
    body = serializers.JSONField()
    parent_id = serializers.JSONField(required=False)
    client_id = serializers.JSONField(required=False)
    attachments = serializers.ListField(child=serializers.CharField(), required=False, help_text="Upload ids.")


class MessageEditSerializer(serializers.Serializer):
    body = serializers.JSONField()


class ReactionRequestSerializer(serializers.Serializer):
    emoji = serializers.JSONField()


class RevisionSerializer(serializers.Serializer):
    body = serializers.CharField()
    written_at = serializers.DateTimeField()
    replaced_at = serializers.DateTimeField()
