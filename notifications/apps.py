from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from notifications.receivers import on_member_added, on_read_marker_moved
        from rooms.signals import member_added, read_marker_moved

        member_added.connect(on_member_added, dispatch_uid="notifications.invite")
        read_marker_moved.connect(on_read_marker_moved, dispatch_uid="notifications.read_marker")

        from prometheus_client import REGISTRY

        from notifications.metrics import NotificationCollector

        REGISTRY.register(NotificationCollector())
