from django.urls import re_path

from notifications import views

urlpatterns = [
    re_path(r"^$", views.NotificationListView.as_view(), name="notifications"),
    re_path(r"^read/?$", views.NotificationReadView.as_view(), name="notifications-read"),
]

# Mounted at /api/push/ (chatproject/urls.py).
push_patterns = [
    re_path(r"^key/?$", views.PushKeyView.as_view(), name="push-key"),
    re_path(r"^subscriptions/?$", views.PushSubscriptionsView.as_view(), name="push-subscriptions"),
]
