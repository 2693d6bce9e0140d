"""Bench fixtures: users, the rooms of each size, and an access token per user (JSON on stdout)."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import access_token_for  # noqa: E402
from rooms.models import Membership, Role, Room  # noqa: E402


def main(total_users: int, sizes: list[int]) -> None:
    with transaction.atomic():
        Room.objects.all().delete()
        User.objects.all().delete()
        users = User.objects.bulk_create(
            [User(username=f"bench{i}", password="!") for i in range(total_users)], batch_size=2000
        )
        rooms: dict[str, int] = {}
        room_ids: list[int] = []
        for size in [*sizes, total_users]:
            room = Room.objects.create(name=f"room-{size}", created_by=users[0])
            room_ids.append(room.pk)
            Membership.objects.bulk_create(
                [
                    Membership(room=room, user=u, role=Role.OWNER if i == 0 else Role.MEMBER)
                    for i, u in enumerate(users[:size])
                ],
                batch_size=2000,
            )
            rooms[str(size)] = room.pk
    tokens = [access_token_for(u) for u in users]
    json.dump({"rooms": rooms, "room_ids": room_ids, "tokens": tokens}, sys.stdout)


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")])
