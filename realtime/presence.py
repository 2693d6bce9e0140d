"""Who is online in a room, across processes, surviving the death of any of them.

Two kinds of scope share one mechanism: a room (who has a room socket of it open: the room
socket's presence), and ANYWHERE (who has any socket open, a user stream or a room socket: the
user stream's presence, told to the people who share a small room with the user).
Each socket holds an entry scored by its expiry. Live processes refresh their entries; a dead
process's entries expire and the next sweep by any process announces those users offline. Every
join and leave is O(log n) in the room's size, so a join storm costs no more than its sockets.
Without Redis (the embedded single-process mode) the same rules run on a dict.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from django.conf import settings

from accounts.models import User
from accounts.serializers import user_payload
from core import async_redis, broadcast
from core.blocking import off_loop
from realtime import frames

logger = logging.getLogger(__name__)


def _member(user_id: int, conn_id: str) -> str:
    return f"{user_id}:{conn_id}"


def _user_of(member: str | bytes) -> int:
    text = member.decode() if isinstance(member, bytes) else member
    return int(text.split(":", 1)[0])


# The scope of "any socket of the user" (room ids start at 1, so 0 names no room).
ANYWHERE = 0


class PresenceBackend(Protocol):
    """join/leave return 0, or the user's presence sequence number of the change they made
    (came online / went offline); sweep returns (room, user, that number) per user gone."""

    async def join(self, room_id: int, user_id: int, conn_id: str) -> int: ...
    async def leave(self, room_id: int, user_id: int, conn_id: str) -> int: ...
    async def refresh(self, entries: list[tuple[int, int, str]]) -> None: ...
    async def online(self, room_id: int) -> set[int]: ...
    async def online_among(self, room_id: int, user_ids: list[int]) -> set[int]: ...
    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int, int]]: ...


# Each script is atomic in Redis: of two sockets of one user opening (or closing) at once on
# different processes, exactly one sees the user come online (or go offline).
# A transition also takes the next number of the user's presence sequence (KEYS[3]), so that
# listeners can tell an older announcement that arrives late from a newer one.
_JOIN = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[4])
if before == 0 then
  return redis.call('INCR', KEYS[3])
end
return 0
"""
_LEAVE = """
local removed = redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if removed == 1 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[3])
  return redis.call('INCR', KEYS[3])
end
return 0
"""
_SWEEP = """
local gone = {}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local user_key = ARGV[2] .. uid
  redis.call('ZREMRANGEBYSCORE', user_key, '-inf', ARGV[1])
  if redis.call('ZCARD', user_key) == 0 then
    redis.call('ZREM', KEYS[1], uid)
    table.insert(gone, uid)
    table.insert(gone, redis.call('INCR', ARGV[3] .. uid))
  end
end
return gone
"""


class RedisPresence:
    """Per room: a sorted set of user ids scored by their latest expiry (who is online);
    per room and user: a sorted set of that user's connections (how many sockets)."""

    def __init__(self, url: str, ttl: float) -> None:
        self.url = url
        self.ttl = ttl

    def _redis(self) -> Any:
        return async_redis.client(self.url)

    @staticmethod
    def _room_key(room_id: int) -> str:
        return f"presence:room:{room_id}"

    @staticmethod
    def _user_prefix(room_id: int) -> str:
        return f"presence:room:{room_id}:user:"

    @staticmethod
    def _sequence_prefix(room_id: int) -> str:
        return f"presence:room:{room_id}:seq:"

    def _keys(self, room_id: int, user_id: int) -> list[str]:
        user = f"{self._user_prefix(room_id)}{user_id}"
        return [self._room_key(room_id), user, f"{self._sequence_prefix(room_id)}{user_id}"]

    async def join(self, room_id: int, user_id: int, conn_id: str) -> int:
        now = time.time()
        args = [now + self.ttl, now, conn_id, user_id, int(self.ttl * 4) + 1]
        return int(await self._redis().eval(_JOIN, 3, *self._keys(room_id, user_id), *args))

    async def leave(self, room_id: int, user_id: int, conn_id: str) -> int:
        keys = self._keys(room_id, user_id)
        return int(await self._redis().eval(_LEAVE, 3, *keys, time.time(), conn_id, user_id))

    async def refresh(self, entries: list[tuple[int, int, str]]) -> None:
        if not entries:
            return
        expiry = time.time() + self.ttl
        async with self._redis().pipeline(transaction=False) as pipe:
            for room_id, user_id, conn_id in entries:
                user_key = f"{self._user_prefix(room_id)}{user_id}"
                pipe.zadd(user_key, {conn_id: expiry})
                pipe.expire(user_key, int(self.ttl * 4) + 1)
                pipe.zadd(self._room_key(room_id), {str(user_id): expiry}, gt=True)
            await pipe.execute()

    async def online(self, room_id: int) -> set[int]:
        live = await self._redis().zrangebyscore(self._room_key(room_id), time.time(), "+inf")
        return {int(m) for m in live}

    async def online_among(self, room_id: int, user_ids: list[int]) -> set[int]:
        if not user_ids:
            return set()
        scores = await self._redis().zmscore(self._room_key(room_id), user_ids)
        now = time.time()
        return {uid for uid, score in zip(user_ids, scores, strict=True) if score is not None and score >= now}

    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int, int]]:
        went_offline: list[tuple[int, int, int]] = []
        now = time.time()
        for room_id in room_ids:
            key, users, sequences = self._room_key(room_id), self._user_prefix(room_id), self._sequence_prefix(room_id)
            gone = await self._redis().eval(_SWEEP, 1, key, now, users, sequences)
            went_offline.extend((room_id, int(uid), int(seq)) for uid, seq in zip(gone[::2], gone[1::2], strict=True))
        return went_offline


class LocalPresence:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.rooms: dict[int, dict[str, float]] = {}
        self.sequence = 0

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    def _live(self, room_id: int) -> dict[str, float]:
        now = time.time()
        return {m: exp for m, exp in self.rooms.get(room_id, {}).items() if exp >= now}

    async def join(self, room_id: int, user_id: int, conn_id: str) -> int:
        self.rooms.setdefault(room_id, {})[_member(user_id, conn_id)] = time.time() + self.ttl
        return self._next() if sum(1 for m in self._live(room_id) if _user_of(m) == user_id) == 1 else 0

    async def leave(self, room_id: int, user_id: int, conn_id: str) -> int:
        removed = self.rooms.get(room_id, {}).pop(_member(user_id, conn_id), None)
        gone = removed is not None and not any(_user_of(m) == user_id for m in self._live(room_id))
        return self._next() if gone else 0

    async def refresh(self, entries: list[tuple[int, int, str]]) -> None:
        for room_id, user_id, conn_id in entries:
            self.rooms.setdefault(room_id, {})[_member(user_id, conn_id)] = time.time() + self.ttl

    async def online(self, room_id: int) -> set[int]:
        return {_user_of(m) for m in self._live(room_id)}

    async def online_among(self, room_id: int, user_ids: list[int]) -> set[int]:
        return await self.online(room_id) & set(user_ids)

    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int, int]]:
        went_offline = []
        now = time.time()
        for room_id in room_ids:
            entries = self.rooms.get(room_id, {})
            for member in [m for m, exp in entries.items() if exp < now]:
                del entries[member]
                if not any(_user_of(m) == _user_of(member) for m in self._live(room_id)):
                    went_offline.append((room_id, _user_of(member), self._next()))
        return went_offline


_backend: PresenceBackend | None = None


def online_user_ids(room_id: int, member_ids: list[int]) -> set[int]:
    """For sync callers (the REST presence view): who has the room open, or any socket at all."""
    from asgiref.sync import async_to_sync

    async def read() -> set[int]:
        return await backend().online(room_id) | await backend().online_among(ANYWHERE, member_ids)

    return async_to_sync(read)()


def backend() -> PresenceBackend:
    global _backend
    if _backend is None:
        ttl = float(settings.WS_PRESENCE_TTL_SECONDS)
        _backend = RedisPresence(settings.REDIS_URL, ttl) if settings.REDIS_URL else LocalPresence(ttl)
    return _backend


async def publish_presence(room_id: int, user: User, status: frames.PresenceStatus) -> None:
    """Tell the room's sockets that a user came online or went offline (the one place that does)."""
    await broadcast.publish_async(broadcast.room_group(room_id), frames.presence(user_payload(user), status))


async def arrive(user: User, conn_id: str, rooms: list[int] | None = None) -> None:
    """A socket of `user` opened: online ANYWHERE, told to the people of their small rooms if it is
    the first (`rooms`: those rooms, when the caller has read them already). Best effort: presence
    never stops a socket."""
    try:
        sequence = await backend().join(ANYWHERE, user.pk, conn_id)
        if sequence:
            await announce_anywhere(user, "online", sequence, rooms)
    except Exception as exc:  # noqa: BLE001 - Redis away: messages still flow
        logger.warning("presence unavailable: %r", exc)


async def depart(user: User, conn_id: str) -> None:
    try:
        sequence = await backend().leave(ANYWHERE, user.pk, conn_id)
        if sequence:
            await announce_anywhere(user, "offline", sequence)
    except Exception as exc:  # noqa: BLE001 - the entry expires after WS_PRESENCE_TTL_SECONDS
        logger.warning("presence leave failed: %r", exc)


async def announce_anywhere(
    user: User, status: frames.PresenceStatus, sequence: int, rooms: list[int] | None = None
) -> None:
    """One event for the whole cluster, naming the user's small rooms: each process's hub hands it
    once to each local stream that is in one of them (realtime/hub.py). One publish however many
    rooms, and no copies to tell apart; `sequence` orders announcements that cross."""
    from realtime.selectors import presence_room_ids

    if rooms is None:
        rooms = await off_loop(presence_room_ids)(user.pk)
    if rooms:
        frame = frames.presence(user_payload(user), status)
        await broadcast.publish_async(broadcast.PRESENCE_GROUP, frame, rooms=rooms, status=status, sequence=sequence)
