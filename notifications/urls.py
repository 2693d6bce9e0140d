from django.urls import re_path

from notifications import views

urlpatterns = [
    re_path(r"^$", views.NotificationListView.as_view(), name="notifications"),
    re_path(r"^read/?$", views.NotificationReadView.as_view(), name="notifications-read"),
]
