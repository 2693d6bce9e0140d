"""Every route of rooms, mounted at `api/rooms/` by chatproject/urls.py."""

from django.urls import re_path

from rooms import moderation_views, views

urlpatterns = [
    re_path(r"^$", views.RoomListCreateView.as_view(), name="rooms"),
    re_path(r"^directory/?$", views.RoomDirectoryView.as_view(), name="room-directory"),
    re_path(r"^(?P<room_id>[^/]+)/?$", views.RoomDetailView.as_view(), name="room"),
    re_path(r"^(?P<room_id>[^/]+)/join/?$", views.RoomJoinView.as_view(), name="room-join"),
    re_path(r"^(?P<room_id>[^/]+)/members/?$", views.RoomMembersView.as_view(), name="room-members"),
    re_path(r"^(?P<room_id>[^/]+)/members/(?P<user_id>[^/]+)/?$", views.RoomMemberView.as_view(), name="room-member"),
    re_path(r"^(?P<room_id>[^/]+)/read/?$", views.RoomReadView.as_view(), name="room-read"),
    re_path(r"^(?P<room_id>[^/]+)/settings/?$", views.RoomSettingsView.as_view(), name="room-settings"),
    re_path(r"^(?P<room_id>[^/]+)/bans/?$", moderation_views.RoomBansView.as_view(), name="room-bans"),
    re_path(r"^(?P<room_id>[^/]+)/bans/(?P<user_id>[^/]+)/?$", moderation_views.RoomBanView.as_view(), name="room-ban"),
    re_path(r"^(?P<room_id>[^/]+)/mutes/?$", moderation_views.RoomMutesView.as_view(), name="room-mutes"),
    re_path(
        r"^(?P<room_id>[^/]+)/mutes/(?P<user_id>[^/]+)/?$", moderation_views.RoomMuteView.as_view(), name="room-mute"
    ),
    re_path(r"^(?P<room_id>[^/]+)/audit/?$", moderation_views.RoomAuditView.as_view(), name="room-audit"),
    re_path(r"^(?P<room_id>[^/]+)/invites/?$", views.RoomInvitesView.as_view(), name="room-invites"),
    re_path(r"^(?P<room_id>[^/]+)/invites/(?P<code>[^/]+)/?$", views.RoomInviteView.as_view(), name="room-invite"),
]

# Mounted at /api/invites/ (chatproject/urls.py).
invite_patterns = [
    re_path(r"^(?P<code>[^/]+)/?$", views.InviteView.as_view(), name="invite"),
    re_path(r"^(?P<code>[^/]+)/accept/?$", views.InviteAcceptView.as_view(), name="invite-accept"),
]

# Mounted at /api/dms (chatproject/urls.py).
direct_patterns = [re_path(r"^/?$", views.DirectRoomView.as_view(), name="direct-rooms")]

# Mounted at /api/admin/ (chatproject/urls.py): staff only.
admin_patterns = [
    re_path(
        r"^users/(?P<user_id>[^/]+)/deactivate/?$",
        moderation_views.DeactivateUserView.as_view(),
        name="admin-user-deactivate",
    ),
]
