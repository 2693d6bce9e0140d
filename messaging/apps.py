from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self) -> None:
        # Rooms (below) shows each room's last seq and unread count without importing this app.
        from messaging.selectors import room_activity
        from rooms import activity

        activity.provide(room_activity)
