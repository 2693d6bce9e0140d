from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from realtime.consumers import RoomConsumer
from realtime.stream import UserStreamConsumer


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: a 4404 close instead of a failed handshake."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404, reason="no such endpoint")


websocket_urlpatterns = [
    re_path(r"^api/ws$", UserStreamConsumer.as_asgi()),  # `/api/ws/` stays "no such room" (4404)
    re_path(r"^api/ws/(?P<room_id>[^/]*)/?$", RoomConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
