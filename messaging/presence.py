"""Who is online in a room, across processes, surviving the death of any of them.

Each socket holds an entry `user:connection` in a Redis sorted set per room, scored by its expiry.
Live processes refresh their entries; a dead process's entries expire and the next sweep by any
process announces those users offline. Each change is one MULTI/EXEC, so of two sockets of one
user opening (or closing) at once exactly one sees itself alone and announces it.
Without Redis (the embedded single-process mode) the same rules run on a dict.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from django.conf import settings


def _member(user_id: int, conn_id: str) -> str:
    return f"{user_id}:{conn_id}"


def _user_of(member: str | bytes) -> int:
    text = member.decode() if isinstance(member, bytes) else member
    return int(text.split(":", 1)[0])


class PresenceBackend(Protocol):
    async def join(self, room_id: int, user_id: int, conn_id: str) -> bool: ...
    async def leave(self, room_id: int, user_id: int, conn_id: str) -> bool: ...
    async def refresh(self, entries: list[tuple[int, int, str]]) -> None: ...
    async def online(self, room_id: int) -> set[int]: ...
    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int]]: ...


class RedisPresence:
    def __init__(self, url: str, ttl: float) -> None:
        self.url = url
        self.ttl = ttl
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    def _redis(self) -> Any:
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()  # a client belongs to one event loop
        client = self._clients.get(loop)
        if client is None:
            # Sync callers (async_to_sync) bring short-lived loops: forget the closed ones.
            for stale in [known for known in self._clients if known.is_closed()]:
                del self._clients[stale]
            client = aioredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._clients[loop] = client
        return client

    @staticmethod
    def _key(room_id: int) -> str:
        return f"presence:room:{room_id}"

    async def join(self, room_id: int, user_id: int, conn_id: str) -> bool:
        now = time.time()
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.zadd(self._key(room_id), {_member(user_id, conn_id): now + self.ttl})
            pipe.zrangebyscore(self._key(room_id), now, "+inf")
            _, live = await pipe.execute()
        return sum(1 for m in live if _user_of(m) == user_id) == 1

    async def leave(self, room_id: int, user_id: int, conn_id: str) -> bool:
        now = time.time()
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.zrem(self._key(room_id), _member(user_id, conn_id))
            pipe.zrangebyscore(self._key(room_id), now, "+inf")
            removed, live = await pipe.execute()
        return bool(removed) and not any(_user_of(m) == user_id for m in live)

    async def refresh(self, entries: list[tuple[int, int, str]]) -> None:
        if not entries:
            return
        expiry = time.time() + self.ttl
        async with self._redis().pipeline(transaction=False) as pipe:
            for room_id, user_id, conn_id in entries:
                pipe.zadd(self._key(room_id), {_member(user_id, conn_id): expiry})
            await pipe.execute()

    async def online(self, room_id: int) -> set[int]:
        live = await self._redis().zrangebyscore(self._key(room_id), time.time(), "+inf")
        return {_user_of(m) for m in live}

    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int]]:
        went_offline: list[tuple[int, int]] = []
        now = time.time()
        for room_id in room_ids:
            for member in await self._redis().zrangebyscore(self._key(room_id), "-inf", now):
                user_id = _user_of(member)
                async with self._redis().pipeline(transaction=True) as pipe:
                    pipe.zrem(self._key(room_id), member)
                    pipe.zrangebyscore(self._key(room_id), now, "+inf")
                    removed, live = await pipe.execute()
                if removed and not any(_user_of(m) == user_id for m in live):
                    went_offline.append((room_id, user_id))
        return went_offline


class LocalPresence:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.rooms: dict[int, dict[str, float]] = {}

    def _live(self, room_id: int) -> dict[str, float]:
        now = time.time()
        return {m: exp for m, exp in self.rooms.get(room_id, {}).items() if exp >= now}

    async def join(self, room_id: int, user_id: int, conn_id: str) -> bool:
        self.rooms.setdefault(room_id, {})[_member(user_id, conn_id)] = time.time() + self.ttl
        return sum(1 for m in self._live(room_id) if _user_of(m) == user_id) == 1

    async def leave(self, room_id: int, user_id: int, conn_id: str) -> bool:
        removed = self.rooms.get(room_id, {}).pop(_member(user_id, conn_id), None)
        return removed is not None and not any(_user_of(m) == user_id for m in self._live(room_id))

    async def refresh(self, entries: list[tuple[int, int, str]]) -> None:
        for room_id, user_id, conn_id in entries:
            self.rooms.setdefault(room_id, {})[_member(user_id, conn_id)] = time.time() + self.ttl

    async def online(self, room_id: int) -> set[int]:
        return {_user_of(m) for m in self._live(room_id)}

    async def sweep(self, room_ids: list[int]) -> list[tuple[int, int]]:
        went_offline = []
        now = time.time()
        for room_id in room_ids:
            entries = self.rooms.get(room_id, {})
            for member in [m for m, exp in entries.items() if exp < now]:
                del entries[member]
                if not any(_user_of(m) == _user_of(member) for m in self._live(room_id)):
                    went_offline.append((room_id, _user_of(member)))
        return went_offline


_backend: PresenceBackend | None = None


def online_user_ids(room_id: int) -> set[int]:
    """For sync callers (the REST presence view)."""
    from asgiref.sync import async_to_sync

    return set(async_to_sync(backend().online)(room_id))


def backend() -> PresenceBackend:
    global _backend
    if _backend is None:
        ttl = float(settings.WS_PRESENCE_TTL_SECONDS)
        _backend = RedisPresence(settings.REDIS_URL, ttl) if settings.REDIS_URL else LocalPresence(ttl)
    return _backend


def reset() -> None:
    """Tests only: forget the backend (settings changed)."""
    global _backend
    _backend = None
