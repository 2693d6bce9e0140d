"""Every HTTP route of real time, mounted at the site root by chatproject/urls.py (sockets: routing.py)."""

from django.urls import re_path

from realtime import views

urlpatterns = [
    re_path(r"^api/rooms/(?P<room_id>[^/]+)/presence/?$", views.RoomPresenceView.as_view(), name="room-presence"),
]
