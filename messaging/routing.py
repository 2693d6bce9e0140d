from django.urls import re_path

from messaging.consumers import RoomConsumer

websocket_urlpatterns = [
    re_path(r"^api/ws/(?P<room_id>[^/]+)/?$", RoomConsumer.as_asgi()),
]
