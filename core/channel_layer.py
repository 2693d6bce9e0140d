"""channels_redis' pub/sub layer, made to let a socket open while Redis is away.

Channels asks the layer for a channel before a consumer's `connect` runs, and the pub/sub layer
subscribes to it in Redis on the spot: with Redis down every handshake failed with HTTP 500. Here a
channel whose subscription failed is still handed out (the layer keeps its queue), so the socket
opens and is served from MongoDB by the process's ticker; this server's consumers take everything
through groups (core.broadcast), which they join again once Redis answers.
"""

from __future__ import annotations

import logging
import uuid

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
