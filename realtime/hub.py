"""Per-process fan-out for room sockets, and the ticker that keeps them honest.

One channel per process subscribes to the groups of the rooms that have sockets here; each
event arrives once per process and is written to every local socket of its room, without a
channel-layer message per socket (which in Channels costs a queue, a task and a decode each).

Every WS_TICK_SECONDS, in one query for the rooms changed lately (the counters' stamp index), it
compares each room's head version with what each socket here has delivered and lets laggards catch
up from the store: a signal lost by the channel layer (or Redis being down) costs latency, never a
message. The same tick moves user streams' cursors on, reads the user logs that moved without a
signal, refreshes this process's presence entries and sweeps expired ones (a dead process's sockets).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol, cast

from django.conf import settings

from accounts import revocations, user_log
from accounts.authentication import forget_user
from accounts.models import User
from accounts.revocations import Revocation
from core import broadcast
from core.blocking import off_loop
from messaging import store
from realtime import presence, user_limits

logger = logging.getLogger(__name__)


class LocalSocket(Protocol):
    """What the hub needs of any socket in this process (a room socket or a user stream)."""

    user: User
    channel_name: str
    access_epoch: int  # the revocation epoch read before it authenticated

    async def on_room_event(self, room_id: int, event: dict[str, Any]) -> None: ...
    def check_head(self, room_id: int, head: store.RoomHead) -> bool: ...
    def revoke(self, revocation: Revocation) -> None: ...


class StreamSocket(LocalSocket, Protocol):
    """A user stream (realtime/stream.py): many rooms, a cursor, the user's log."""

    def tick_floor(self) -> int | None: ...
    def checked(self, floor_ms: int, read_ms: int) -> None: ...
    def check_log(self, position: int) -> None: ...
    def on_presence(self, event: dict[str, Any]) -> None: ...


class RoomSocket(LocalSocket, Protocol):
    room_id: int
    push_presence: bool


def now_ms() -> int:
    return int(time.time() * 1000)


class Hub:
    def __init__(self) -> None:
        self.rooms: dict[int, set[LocalSocket]] = {}
        self.users: dict[int, set[LocalSocket]] = {}
        self.streams: set[StreamSocket] = set()
        self.groups: dict[str, int] = {}
        # Revocations read up to here (accounts/revocations.py); None while no socket is here.
        self._epoch: int | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._subscribed: set[int] = set()  # rooms whose group this process's channel is in
        self._subscription_locks = [asyncio.Lock() for _ in range(64)]  # striped: bounded memory
        self._channel: str | None = None
        self._channel_lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._last_read_ms: int | None = None  # when the previous tick read the rooms' heads

    async def register(self, consumer: LocalSocket, room_ids: list[int], *, stream: bool = False) -> None:
        """Add a socket; returns once its rooms' events reach this process (or the layer is down)."""
        self.users.setdefault(consumer.user.pk, set()).add(consumer)
        if stream:
            self.streams.add(consumer)  # type: ignore[arg-type]  # realtime/stream.py's consumer
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
        await self.listen(consumer, room_ids)

    async def listen(self, consumer: LocalSocket, room_ids: list[int]) -> None:
        """Send `consumer` the events of `room_ids` too: one subscription per room per process.
        Returns once they are subscribed (or the layer is down: the tick delivers meanwhile)."""
        for room_id in room_ids:
            self.rooms.setdefault(room_id, set()).add(consumer)
        await asyncio.gather(*(self._keep_subscription(room_id) for room_id in room_ids))

    async def unlisten(self, consumer: LocalSocket, room_ids: list[int]) -> None:
        emptied = []
        for room_id in room_ids:
            sockets = self.rooms.get(room_id)
            if sockets is None:
                continue
            sockets.discard(consumer)
            if not sockets:
                del self.rooms[room_id]
                emptied.append(room_id)
        for room_id in emptied:
            await self._keep_subscription(room_id)

    def _subscription_lock(self, room_id: int) -> asyncio.Lock:
        return self._subscription_locks[room_id % len(self._subscription_locks)]

    async def _keep_subscription(self, room_id: int) -> None:
        """Make the room's subscription match whether it has sockets here. Per room, one change at a
        time: a socket leaving while another joins once unsubscribed after the join had subscribed,
        and the room went unheard (but for the tick) until the process restarted."""
        async with self._subscription_lock(room_id):
            wanted = room_id in self.rooms
            if wanted == (room_id in self._subscribed):
                return
            group = broadcast.room_group(room_id)
            if wanted:
                try:
                    await self._subscribe(room_id)
                    self._subscribed.add(room_id)
                except Exception as exc:  # noqa: BLE001 - Redis down: the tick delivers; the next socket retries
                    logger.warning("room subscription failed: %r", exc)
                return
            self._subscribed.discard(room_id)
            self.groups.pop(group, None)
            if self._channel is not None:
                try:
                    await broadcast.unsubscribe(group, self._channel)
                except Exception as exc:  # noqa: BLE001 - a stale subscription only costs traffic
                    logger.debug("room unsubscribe failed: %r", exc)

    async def unregister(self, consumer: LocalSocket, room_ids: list[int]) -> None:
        self.streams.discard(consumer)
        own = self.users.get(consumer.user.pk)
        if own is not None:
            own.discard(consumer)
            if not own:
                del self.users[consumer.user.pk]
                if not self.users:
                    self._epoch = None
        await self.unlisten(consumer, room_ids)

    async def _subscribe(self, room_id: int) -> None:
        channel = await self._process_channel()
        group = broadcast.room_group(room_id)
        self.groups[group] = room_id
        await broadcast.subscribe(group, channel)

    async def _process_channel(self) -> str:
        """The one channel this process receives room events on. Subscriptions run concurrently
        (a stream's rooms, sockets opening at once): without the lock each made a channel of its
        own, and every room but the first was heard of only by the tick."""
        async with self._channel_lock:
            if self._channel is None:
                channel = await broadcast.new_channel()
                await broadcast.subscribe(broadcast.PRESENCE_GROUP, channel)
                self._channel = channel
            if self._receiver is None or self._receiver.done():
                self._receiver = asyncio.get_running_loop().create_task(self._receive_forever(self._channel))
            return self._channel

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
        """One event, serialised once by its publisher, to every local socket of its room."""
        if event.get("group") == broadcast.PRESENCE_GROUP:
            self.tell_presence(event)
            return
        room_id = self.groups.get(str(event.get("group")))
        if room_id is None:
            return
        for consumer in list(self.rooms.get(room_id, ())):
            try:
                await consumer.on_room_event(room_id, event)
            except Exception as exc:  # noqa: BLE001 - a socket closing mid-send must not starve the others
                logger.debug("delivery to a closing socket failed: %r", exc)

    def tell_presence(self, event: dict[str, Any]) -> None:
        """Someone's presence anywhere: once to each local stream in one of the rooms it names."""
        told: set[LocalSocket] = set()
        for room_id in event.get("rooms", ()):
            told.update(c for c in self.rooms.get(int(room_id), ()) if c in self.streams)
        for stream in told:
            cast(StreamSocket, stream).on_presence(event)

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
        while self.users:
            await asyncio.sleep(settings.WS_TICK_SECONDS)
            # Separately guarded: MongoDB down must not stop presence, nor Redis down the catch-up.
            for step in (self.catch_up, self.check_logs, self.keep_presence, self.resubscribe):
                try:
                    await step()
                except Exception as exc:  # noqa: BLE001 - the ticker must outlive any outage
                    logger.warning("websocket tick %s failed: %r", step.__name__, exc)

    async def resubscribe(self) -> None:
        """Rooms whose subscription failed (Redis was away) get another try."""
        missing = [room_id for room_id in self.rooms if room_id not in self._subscribed]
        await asyncio.gather(*(self._keep_subscription(room_id) for room_id in missing[:1000]))

    def _floor(self, read_ms: int) -> int:
        """The oldest stamp this tick must look from: every change committed since the last tick
        (a change commits within the margin of its stamp) and every stream's cursor stamp."""
        margin = int(settings.STREAM_CURSOR_MARGIN_SECONDS * 1000)
        previous = (
            self._last_read_ms if self._last_read_ms is not None else read_ms - int(settings.WS_TICK_SECONDS * 1000)
        )
        floors = [previous - margin]
        floors.extend(f for f in (s.tick_floor() for s in self.streams) if f is not None)
        return min(floors)

    async def catch_up(self) -> None:
        """Compare the heads of the rooms changed lately with what each socket has delivered; those
        behind catch up from the store. A stream that is behind nowhere moves its cursor on."""
        if not self.rooms and not self.streams:
            return
        read_ms = now_ms()  # before the read: a change it misses is stamped after read_ms - margin
        floor = self._floor(read_ms)
        heads = await off_loop(store.rooms_changed_since)(floor, max(1_000, len(self.rooms)))
        if heads is None:  # a busy minute on a big server: ask for this process's rooms instead
            heads = await off_loop(store.room_heads)(list(self.rooms))
        behind: set[LocalSocket] = set()
        for room_id, head in heads.items():
            for consumer in list(self.rooms.get(room_id, ())):
                if consumer.check_head(room_id, head):
                    behind.add(consumer)
        for stream in list(self.streams):
            if stream not in behind:
                stream.checked(floor, read_ms)
        self._last_read_ms = read_ms

    async def check_logs(self) -> None:
        """Streams whose user's log moved on without their hearing of it read it (a lost signal)."""
        if not self.streams:
            return
        positions = await off_loop(user_log.head_positions)({s.user.pk for s in self.streams})
        for stream in list(self.streams):
            stream.check_log(positions.get(stream.user.pk, 0))

    async def keep_presence(self) -> None:
        room_sockets: dict[int, list[RoomSocket]] = {}
        for room_id, sockets in self.rooms.items():
            for consumer in sockets:
                if consumer not in self.streams:
                    room_sockets.setdefault(room_id, []).append(consumer)  # type: ignore[arg-type]
        backend = presence.backend()
        await backend.refresh([(c.room_id, c.user.pk, c.channel_name) for s in room_sockets.values() for c in s])
        await user_limits.backend().refresh([(c.user.pk, c.channel_name) for s in self.users.values() for c in s])
        anywhere = presence.ANYWHERE
        await backend.refresh([(anywhere, c.user.pk, c.channel_name) for s in self.users.values() for c in s])
        for _, user_id, sequence in await backend.sweep([anywhere]):  # any process's sockets that vanished
            gone = await off_loop(User.objects.filter(pk=user_id).first)()
            if gone is not None:
                await presence.announce_anywhere(gone, "offline", sequence)
        for room_id, user_id, _ in await backend.sweep(list(room_sockets)):
            if not any(consumer.push_presence for consumer in room_sockets[room_id]):
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
