from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from notifications.receivers import on_member_added
        from rooms.signals import member_added

        member_added.connect(on_member_added, dispatch_uid="notifications.invite")

        from prometheus_client import REGISTRY

        from notifications.metrics import NotificationCollector

        REGISTRY.register(NotificationCollector())
