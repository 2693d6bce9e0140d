"""Bench fixtures: users, the rooms of each size, and an access token per user (JSON on stdout).

    seed.py USERS SIZES [SPREAD_ROOMS]

SPREAD_ROOMS (bench/ws_stream_bench.py): that many more rooms of the first 21 users each (a sender
and 20 readers, every one of them in every such room), listed as "spread"."""

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

SPREAD_MEMBERS = 21


def main(total_users: int, sizes: list[int], spread: int = 0) -> None:
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
        spread_ids: list[int] = []
        for index in range(spread):
            room = Room.objects.create(name=f"spread-{index}", created_by=users[0])
            Membership.objects.bulk_create(
                [
                    Membership(room=room, user=u, role=Role.OWNER if i == 0 else Role.MEMBER)
                    for i, u in enumerate(users[:SPREAD_MEMBERS])
                ]
            )
            spread_ids.append(room.pk)
        # bulk_create skips the receivers that keep each room's member count (presence reads it).
        for room in Room.objects.all():
            Room.objects.filter(pk=room.pk).update(member_count=room.memberships.count())
    tokens = [access_token_for(u) for u in users]
    json.dump({"rooms": rooms, "room_ids": room_ids, "spread": spread_ids, "tokens": tokens}, sys.stdout)


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
