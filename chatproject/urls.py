from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import pages as account_pages
from chatproject import health
from chatproject.metrics import metrics_view
from messaging import pages
from messaging.upload_views import FileDownloadView, FileThumbnailView, UploadView
from messaging.views import SearchView

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", account_pages.login_page, name="login"),
    path("register/", account_pages.register_page, name="register"),
    path("logout/", account_pages.logout_page, name="logout"),
    path("chat/", pages.chat_page, name="chat"),
    path("chat/<int:room_id>/", pages.chat_page, name="chat-room"),
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/rooms/", include("rooms.urls")),
    path("api/messages/", include("messaging.urls")),
    path("api/search", SearchView.as_view(), name="search"),
    re_path(r"^api/uploads/(?P<upload_id>[^/]+)/?$", UploadView.as_view(), name="upload"),
    re_path(r"^api/files/(?P<upload_id>[^/]+)/?$", FileDownloadView.as_view(), name="file"),
    re_path(r"^api/files/(?P<upload_id>[^/]+)/thumbnail/?$", FileThumbnailView.as_view(), name="file-thumbnail"),
    path("api/notifications/", include("notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api-auth/", include("rest_framework.urls")),
]

handler400 = "chatproject.errors.handler400"
handler403 = "chatproject.errors.handler403"
handler404 = "chatproject.errors.handler404"
handler500 = "chatproject.errors.handler500"
