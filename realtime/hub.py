"""Per-process fan-out for room sockets, and the ticker that keeps them honest.

One channel per process subscribes to the groups of the rooms that have sockets here; each
event arrives once per process and is written to every local socket of its room, without a
channel-layer message per socket (which in Channels costs a queue, a task and a decode each).

Every WS_TICK_SECONDS, in one query for all rooms with sockets here, it compares each room's head
version with what each socket has delivered and lets laggards catch up from the store: a signal
lost by the channel layer (or Redis being down) costs latency, never a message. The same tick
refreshes this process's presence entries and sweeps expired ones (a dead process's sockets).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from django.conf import settings

from accounts import revocations
from accounts.authentication import forget_user
from accounts.models import User
from accounts.revocations import Revocation
from core import broadcast
from core.blocking import off_loop
from messaging import store
from realtime import frames, presence, user_limits

logger = logging.getLogger(__name__)


class LocalSocket(Protocol):
    """What the hub needs of a socket in this process (realtime/consumers.py's LocalSocket)."""

    room_id: int
    user: User
    channel_name: str
    last_version: int  # highest room version delivered, in order
    push_presence: bool
    access_epoch: int  # the revocation epoch read before it authenticated

    async def deliver_message_text(self, version: int, text: str) -> None: ...
    async def send_text(self, text: str) -> None: ...
    def schedule_catch_up(self, upto_version: int) -> None: ...
    def revoke(self, revocation: Revocation) -> None: ...


class Hub:
    def __init__(self) -> None:
        self.rooms: dict[int, set[LocalSocket]] = {}
        self.users: dict[int, set[LocalSocket]] = {}
        self.groups: dict[str, int] = {}
        # Revocations read up to here (accounts/revocations.py); None while no socket is here.
        self._epoch: int | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._subscribed: dict[int, asyncio.Future[None]] = {}
        self._channel: str | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None

    async def register(self, consumer: LocalSocket) -> None:
        """Add a socket; returns once its room's events reach this process (or the layer is down)."""
        room_id = consumer.room_id
        self.rooms.setdefault(room_id, set()).add(consumer)
        self.users.setdefault(consumer.user.pk, set()).add(consumer)
        loop = asyncio.get_running_loop()
        if self._ticker is None or self._ticker.done():
            self._ticker = loop.create_task(self._tick_forever())
        if self._epoch is None:
            self._epoch = consumer.access_epoch
        elif consumer.access_epoch < self._epoch:
            # Revocations were read while it authenticated, before it was here to be told.
            missed = await off_loop(revocations.revocations_after)(consumer.access_epoch, user_id=consumer.user.pk)
            for revocation in missed:
                if revocation.epoch <= self._epoch:
                    consumer.revoke(revocation)
        if self._watcher is None or self._watcher.done():
            self._watcher = loop.create_task(self._watch_revocations())
        subscribed = self._subscribed.get(room_id)
        if subscribed is None:
            subscribed = self._subscribed[room_id] = loop.create_future()
            try:
                await self._subscribe(room_id)
            except Exception as exc:  # noqa: BLE001 - Redis down: the ticker still delivers
                logger.warning("room subscription failed: %r", exc)
            finally:
                subscribed.set_result(None)
        await asyncio.shield(subscribed)

    async def unregister(self, consumer: LocalSocket) -> None:
        own = self.users.get(consumer.user.pk)
        if own is not None:
            own.discard(consumer)
            if not own:
                del self.users[consumer.user.pk]
                if not self.users:
                    self._epoch = None
        sockets = self.rooms.get(consumer.room_id)
        if sockets is None:
            return
        sockets.discard(consumer)
        if not sockets:
            del self.rooms[consumer.room_id]
            self._subscribed.pop(consumer.room_id, None)
            group = broadcast.room_group(consumer.room_id)
            self.groups.pop(group, None)
            if self._channel is not None:
                try:
                    await broadcast.unsubscribe(group, self._channel)
                except Exception as exc:  # noqa: BLE001 - a stale subscription only costs traffic
                    logger.debug("room unsubscribe failed: %r", exc)

    async def _subscribe(self, room_id: int) -> None:
        if self._channel is None:
            self._channel = await broadcast.new_channel()
        if self._receiver is None or self._receiver.done():
            self._receiver = asyncio.get_running_loop().create_task(self._receive_forever(self._channel))
        group = broadcast.room_group(room_id)
        self.groups[group] = room_id
        await broadcast.subscribe(group, self._channel)

    async def _receive_forever(self, channel: str) -> None:
        while True:
            try:
                event = await broadcast.receive(channel)
                await self.fan_out(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop delivery
                logger.warning("room event fan-out failed: %r", exc)
                await asyncio.sleep(0.1)

    async def fan_out(self, event: dict[str, Any]) -> None:
        room_id = self.groups.get(str(event.get("group")))
        sockets = list(self.rooms.get(room_id, ())) if room_id is not None else []
        kind = event.get("kind")
        text = event["text"]
        version = int(event["version"]) if kind in (frames.MESSAGE_NEW, frames.MESSAGE_UPDATED) else None
        sender = event.get("sender")
        for consumer in sockets:
            try:
                if version is not None:
                    await consumer.deliver_message_text(version, text)
                elif sender is None or sender != str(consumer.user.pk):  # own typing/presence is no news
                    await consumer.send_text(text)
            except Exception as exc:  # noqa: BLE001 - a socket closing mid-send must not starve the others
                logger.debug("delivery to a closing socket failed: %r", exc)

    async def _watch_revocations(self) -> None:
        while self.users:
            await asyncio.sleep(settings.REVOCATION_POLL_SECONDS)
            try:
                await self.apply_revocations()
            except Exception as exc:  # noqa: BLE001 - PostgreSQL away: try again next time
                logger.warning("revocation poll failed: %r", exc)

    async def apply_revocations(self) -> None:
        """Close the local sockets that newly revoked access names (one indexed query)."""
        if self._epoch is None:
            return
        for revocation in await off_loop(revocations.revocations_after)(self._epoch):
            if revocation.room_id is None:
                forget_user(revocation.user_id)
            for consumer in list(self.users.get(revocation.user_id, ())):
                if consumer.access_epoch < revocation.epoch:
                    consumer.revoke(revocation)
            if self._epoch is not None:
                self._epoch = max(self._epoch, revocation.epoch)

    async def _tick_forever(self) -> None:
        while self.rooms:
            await asyncio.sleep(settings.WS_TICK_SECONDS)
            snapshot = {room_id: list(sockets) for room_id, sockets in self.rooms.items()}
            # Separately guarded: MongoDB down must not stop presence, nor Redis down the catch-up.
            for step in (self.catch_up, self.keep_presence):
                try:
                    await step(snapshot)
                except Exception as exc:  # noqa: BLE001 - the ticker must outlive any outage
                    logger.warning("websocket tick %s failed: %r", step.__name__, exc)

    async def catch_up(self, snapshot: dict[int, list[LocalSocket]]) -> None:
        if not snapshot:
            return
        heads = await off_loop(store.room_heads)(list(snapshot))
        for room_id, sockets in snapshot.items():
            head = heads.get(room_id)
            for consumer in sockets:
                if head is not None and head.version > consumer.last_version:
                    consumer.schedule_catch_up(head.version)

    async def keep_presence(self, snapshot: dict[int, list[LocalSocket]]) -> None:
        backend = presence.backend()
        await backend.refresh([(c.room_id, c.user.pk, c.channel_name) for s in snapshot.values() for c in s])
        await user_limits.backend().refresh([(c.user.pk, c.channel_name) for s in snapshot.values() for c in s])
        for room_id, user_id in await backend.sweep(list(snapshot)):
            if not any(consumer.push_presence for consumer in snapshot[room_id]):
                continue
            user = await off_loop(User.objects.filter(pk=user_id).first)()
            if user is not None:
                await presence.publish_presence(room_id, user, "offline")


_hubs: dict[int, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (one per server process; one per test loop)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _hubs:
        _hubs[loop_id] = Hub()
    return _hubs[loop_id]
