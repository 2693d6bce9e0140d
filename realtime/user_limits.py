"""Limits per user over every server process: open sockets, and frames per second.

Both live in Redis as small atomic scripts, so a client that opens its sockets (or spreads its
frames) over many processes meets the same limit as on one. Without Redis (the embedded
single-process mode) the same rules run on dicts. Redis being away fails open: the per-socket
flood gate (realtime/flood.py) still holds every socket to WS_FLOOD_RATE.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from django.conf import settings

from core import async_redis
from realtime.flood import FloodGate

logger = logging.getLogger(__name__)

# KEYS[1] the user's sockets, scored by expiry. ARGV: now, expiry, socket, cap, key ttl.
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
# KEYS[1] the user's token bucket. ARGV: rate per second, burst. Redis's clock: one for all processes.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""


class UserLimits(Protocol):
    async def open_socket(self, user_id: int, socket: str) -> bool: ...
    async def close_socket(self, user_id: int, socket: str) -> None: ...
    async def refresh(self, sockets: list[tuple[int, str]]) -> None: ...
    async def take_frame(self, user_id: int) -> bool: ...


class RedisUserLimits:
    def __init__(self, url: str, ttl: float) -> None:
        self.url = url
        self.ttl = ttl

    @staticmethod
    def _sockets_key(user_id: int) -> str:
        return f"ws:user:{user_id}:sockets"

    async def open_socket(self, user_id: int, socket: str) -> bool:
        now = time.time()
        args = [now, now + self.ttl, socket, settings.WS_MAX_SOCKETS_PER_USER, int(self.ttl * 4) + 1]
        return bool(await async_redis.client(self.url).eval(_OPEN, 1, self._sockets_key(user_id), *args))

    async def close_socket(self, user_id: int, socket: str) -> None:
        await async_redis.client(self.url).zrem(self._sockets_key(user_id), socket)

    async def refresh(self, sockets: list[tuple[int, str]]) -> None:
        if not sockets:
            return
        expiry = time.time() + self.ttl
        async with async_redis.client(self.url).pipeline(transaction=False) as pipe:
            for user_id, socket in sockets:
                pipe.zadd(self._sockets_key(user_id), {socket: expiry}, xx=True)
                pipe.expire(self._sockets_key(user_id), int(self.ttl * 4) + 1)
            await pipe.execute()

    async def take_frame(self, user_id: int) -> bool:
        key = f"ws:user:{user_id}:frames"
        rate, burst = settings.WS_FLOOD_RATE, settings.WS_FLOOD_BURST
        return bool(await async_redis.client(self.url).eval(_TAKE, 1, key, rate, burst))


class LocalUserLimits:
    def __init__(self) -> None:
        self.sockets: dict[int, set[str]] = {}
        self.gates: dict[int, FloodGate] = {}

    async def open_socket(self, user_id: int, socket: str) -> bool:
        own = self.sockets.setdefault(user_id, set())
        if socket not in own and len(own) >= settings.WS_MAX_SOCKETS_PER_USER:
            return False
        own.add(socket)
        return True

    async def close_socket(self, user_id: int, socket: str) -> None:
        own = self.sockets.get(user_id)
        if own is not None:
            own.discard(socket)
            if not own:
                del self.sockets[user_id]
                self.gates.pop(user_id, None)

    async def refresh(self, sockets: list[tuple[int, str]]) -> None:
        return None  # nothing expires here: the process that holds the sockets is this one

    async def take_frame(self, user_id: int) -> bool:
        gate = self.gates.get(user_id)
        if gate is None:
            gate = self.gates[user_id] = FloodGate(settings.WS_FLOOD_RATE, settings.WS_FLOOD_BURST)
        return gate.allow()


_backend: UserLimits | None = None


def backend() -> UserLimits:
    global _backend
    if _backend is None:
        ttl = float(settings.WS_PRESENCE_TTL_SECONDS)
        _backend = RedisUserLimits(settings.REDIS_URL, ttl) if settings.REDIS_URL else LocalUserLimits()
    return _backend


async def socket_allowed(user_id: int, socket: str) -> bool:
    try:
        return await backend().open_socket(user_id, socket)
    except Exception as exc:  # noqa: BLE001 - Redis away: let the socket in, the others still work
        logger.warning("socket count unavailable; letting it in: %r", exc)
        return True


async def frame_allowed(user_id: int) -> bool:
    try:
        return await backend().take_frame(user_id)
    except Exception as exc:  # noqa: BLE001 - Redis away: the per-socket gate still holds
        logger.debug("user flood gate unavailable: %r", exc)
        return True


async def socket_closed(user_id: int, socket: str) -> None:
    try:
        await backend().close_socket(user_id, socket)
    except Exception as exc:  # noqa: BLE001 - the entry expires after WS_PRESENCE_TTL_SECONDS
        logger.debug("socket count release failed: %r", exc)
