from __future__ import annotations

from typing import TypedDict

from rest_framework import serializers

from accounts.models import User


class UserSerializer(serializers.Serializer):
    """What any other user may see: never the email or the password hash."""

    id = serializers.CharField(read_only=True)
    username = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    avatar_url = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The uploaded picture, or null (initials are at /api/users/{id}/avatar).",
    )


class MeSerializer(UserSerializer):
    # A CharField, not an EmailField: an account without an address answers "" (not a valid `email`).
    email = serializers.CharField(read_only=True, help_text="The account's e-mail address, or empty.")
    date_joined = serializers.DateTimeField(read_only=True)
    email_notifications = serializers.BooleanField(read_only=True)
    dnd_until = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Do not disturb until then.")


class MeUpdateSerializer(serializers.Serializer):
    """`PATCH /api/auth/me`: every field optional; what is given is validated and saved together."""

    display_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    email_notifications = serializers.BooleanField(required=False)
    dnd_until = serializers.DateTimeField(required=False, allow_null=True)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class UserPayload(TypedDict):
    """The public `User` shape (documented by UserSerializer; a test keeps the two alike)."""

    id: str
    username: str
    display_name: str
    avatar_url: str | None


def user_payload(user: User) -> UserPayload:
    """The public `User` shape, built without a serializer on hot paths."""
    return {
        "id": str(user.pk),
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
    }


class RegisterSerializer(serializers.Serializer):
    # The rule itself (NFKC, 1-150 of letters, digits, '.', '_', '-') is accounts.services.normalize_username,
    # shared with the sign-up page; this documents the shape.
    username = serializers.CharField(
        max_length=1000,
        allow_blank=True,
        help_text="1 to 150 letters, digits, '.', '_' or '-' (after NFKC normalisation).",
    )
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class AuthResultSerializer(serializers.Serializer):
    user = MeSerializer()
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(required=False)


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField()
