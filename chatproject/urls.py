"""The site's URLs: each app mounts its own routes from its one urls.py."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts import pages as account_pages
from accounts import urls as account_urls
from accounts.login_limits import failed_logins_limited
from chatproject import health, pages
from chatproject.api_docs import ApiDocsView
from chatproject.monitoring import metrics_view
from messaging import urls as message_urls
from notifications import urls as notification_urls
from notifications.pages import unsubscribe_page
from rooms import urls as room_urls

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", account_pages.login_page, name="login"),
    path("register/", account_pages.register_page, name="register"),
    path("logout/", account_pages.logout_page, name="logout"),
    path("chat/", pages.chat_page, name="chat"),
    path("chat/<int:room_id>/", pages.chat_page, name="chat-room"),
    path("invite/<str:code>/", pages.invite_page, name="invite-page"),
    path("sw.js", pages.service_worker, name="service-worker"),
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/login/", failed_logins_limited(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/users", include(account_urls.people_patterns)),
    path("api/rooms/", include("rooms.urls")),
    path("api/rooms/", include(message_urls.room_report_patterns)),
    path("api/reports", include(message_urls.report_patterns)),
    path("api/admin/", include(room_urls.admin_patterns)),
    path("api/dms", include(room_urls.direct_patterns)),
    path("api/invites/", include(room_urls.invite_patterns)),
    path("api/messages/", include("messaging.urls")),
    path("api/notifications/", include("notifications.urls")),
    path("api/push/", include(notification_urls.push_patterns)),
    path("unsubscribe/<str:token>/", unsubscribe_page, name="unsubscribe"),
    path("", include("files.urls")),
    path("", include("search.urls")),
    path("", include("realtime.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="docs"),
    path(
        "api-auth/login/",
        failed_logins_limited(LoginView.as_view(template_name="rest_framework/login.html")),
        name="api-auth-login",
    ),
    path("api-auth/", include("rest_framework.urls")),
]

handler400 = "core.errors.handler400"
handler403 = "core.errors.handler403"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
