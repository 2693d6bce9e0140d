"""Every route of messages, mounted at `api/messages/` by chatproject/urls.py."""

from django.urls import re_path

from messaging import views

urlpatterns = [
    re_path(r"^(?P<message_id>[^/]+)/react/?$", views.MessageReactView.as_view(), name="message-react"),
    re_path(r"^(?P<message_id>[^/]+)/history/?$", views.MessageRevisionsView.as_view(), name="message-history"),
    re_path(r"^(?P<message_id>[^/]+)/thread/?$", views.MessageThreadView.as_view(), name="message-thread"),
    re_path(r"^(?P<ident>[^/]+)/?$", views.RoomMessagesView.as_view(), name="messages"),
]
