"""channels_redis' pub/sub layer, made to let a socket open while Redis is away.

Channels asks the layer for a channel before a consumer's `connect` runs, and the pub/sub layer
subscribes to it in Redis on the spot: with Redis down every handshake failed with HTTP 500. Here a
channel whose subscription failed is still handed out (the layer keeps its queue), so the socket
opens and is served from MongoDB by the process's ticker; this server's consumers take everything
through groups (core.broadcast), which they join again once Redis answers.

It also sends many group messages in one pipelined round trip (`group_send_many`, what a group
commit's announcements use), through the same connection and lock as channels_redis' own
`group_send` (channels-redis 4.3's shard internals: pinned in requirements.txt).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class ResilientPubSubChannelLayer(RedisPubSubChannelLayer):
    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        try:
            await self._subscribe_to_channel(channel)
        except (RedisError, OSError) as exc:
            logger.warning("channel layer unavailable; %s opens without its subscription: %r", channel, exc)
        return channel

    async def group_send_many(self, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """group_send of each (group, message), in order, one round trip per Redis shard."""
        layer = self._get_layer()
        shards: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            shard = layer._get_shard(channel)
            shards.setdefault(id(shard), (shard, []))[1].append((channel, self.serialize(message)))
        for shard, items in shards.values():
            async with shard._lock:  # as RedisSingleShardConnection.publish
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for channel, payload in items:
                    pipe.publish(channel, payload)
                await pipe.execute()
