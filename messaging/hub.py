"""Per-process registry of open room sockets and the ticker that keeps them honest.

Every WS_TICK_SECONDS, in one query for all rooms with sockets here, it compares each room's head
version with what each socket has delivered and lets laggards catch up from the store: a signal
lost by the channel layer (or Redis being down) costs latency, never a message. The same tick
refreshes this process's presence entries and sweeps expired ones (a dead process's sockets).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import User
from accounts.serializers import user_payload
from messaging import broadcast, events, presence, store

if TYPE_CHECKING:
    from messaging.consumers import RoomConsumer

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self) -> None:
        self.rooms: dict[int, set[RoomConsumer]] = {}
        self._task: asyncio.Task[None] | None = None

    def register(self, consumer: RoomConsumer) -> None:
        self.rooms.setdefault(consumer.room_id, set()).add(consumer)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unregister(self, consumer: RoomConsumer) -> None:
        sockets = self.rooms.get(consumer.room_id)
        if sockets is not None:
            sockets.discard(consumer)
            if not sockets:
                del self.rooms[consumer.room_id]

    async def _run(self) -> None:
        while self.rooms:
            await asyncio.sleep(settings.WS_TICK_SECONDS)
            snapshot = {room_id: list(sockets) for room_id, sockets in self.rooms.items()}
            # Separately guarded: MongoDB down must not stop presence, nor Redis down the catch-up.
            for step in (self.catch_up, self.keep_presence):
                try:
                    await step(snapshot)
                except Exception as exc:  # noqa: BLE001 - the ticker must outlive any outage
                    logger.warning("websocket tick %s failed: %r", step.__name__, exc)

    async def catch_up(self, snapshot: dict[int, list[RoomConsumer]]) -> None:
        heads = await database_sync_to_async(store.room_heads)(list(snapshot))
        for room_id, sockets in snapshot.items():
            head = heads.get(room_id)
            for consumer in sockets:
                if head is not None and head.version > consumer.last_version:
                    asyncio.get_running_loop().create_task(consumer.catch_up(head.version))

    async def keep_presence(self, snapshot: dict[int, list[RoomConsumer]]) -> None:
        backend = presence.backend()
        await backend.refresh([(c.room_id, c.user.pk, c.channel_name) for s in snapshot.values() for c in s])
        for room_id, user_id in await backend.sweep(list(snapshot)):
            if not any(consumer.push_presence for consumer in snapshot[room_id]):
                continue
            user = await database_sync_to_async(User.objects.filter(pk=user_id).first)()
            if user is not None:
                await broadcast.publish_async(
                    broadcast.room_group(room_id), events.presence(user_payload(user), "offline")
                )


_hubs: dict[int, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (one per server process; one per test loop)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _hubs:
        _hubs[loop_id] = Hub()
    return _hubs[loop_id]
