"""Every route of files, mounted at the site root by chatproject/urls.py (tus PATCH: files/streaming.py)."""

from django.urls import re_path

from files import views

urlpatterns = [
    re_path(r"^api/rooms/(?P<room_id>[^/]+)/uploads/?$", views.RoomUploadsView.as_view(), name="room-uploads"),
    re_path(r"^api/rooms/(?P<room_id>[^/]+)/files/?$", views.RoomFilesView.as_view(), name="room-files"),
    re_path(r"^api/uploads/(?P<upload_id>[^/]+)/?$", views.UploadView.as_view(), name="upload"),
    re_path(r"^api/files/(?P<upload_id>[^/]+)/?$", views.FileDownloadView.as_view(), name="file"),
    re_path(r"^api/files/(?P<upload_id>[^/]+)/thumbnail/?$", views.FileThumbnailView.as_view(), name="file-thumbnail"),
    re_path(r"^api/auth/me/avatar/?$", views.MyAvatarView.as_view(), name="auth-avatar"),
    re_path(r"^api/users/(?P<user_id>[^/]+)/avatar/?$", views.UserAvatarView.as_view(), name="user-avatar"),
]
