"""Every route of messages, mounted at `api/messages/` by chatproject/urls.py."""

from django.urls import re_path

from messaging import views

urlpatterns = [
    re_path(r"^(?P<message_id>[^/]+)/react/?$", views.MessageReactView.as_view(), name="message-react"),
    re_path(r"^(?P<message_id>[^/]+)/report/?$", views.MessageReportView.as_view(), name="message-report"),
    re_path(r"^(?P<message_id>[^/]+)/history/?$", views.MessageRevisionsView.as_view(), name="message-history"),
    re_path(r"^(?P<message_id>[^/]+)/thread/?$", views.MessageThreadView.as_view(), name="message-thread"),
    re_path(r"^(?P<ident>[^/]+)/?$", views.RoomMessagesView.as_view(), name="messages"),
]

# Mounted at /api/rooms/ (chatproject/urls.py): a room's review queue lives with the messages it is about.
room_report_patterns = [
    re_path(r"^(?P<room_id>[^/]+)/reports/?$", views.RoomReportsView.as_view(), name="room-reports"),
]

# Mounted at /api/reports (chatproject/urls.py).
report_patterns = [
    re_path(r"^/?$", views.SiteReportsView.as_view(), name="reports"),
    re_path(r"^/(?P<report_id>[^/]+)/resolve/?$", views.ReportResolveView.as_view(), name="report-resolve"),
]
