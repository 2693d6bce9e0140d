from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "realtime"

    def ready(self) -> None:
        from messaging.signals import room_messages_changed
        from realtime.publishing import publish_room_changes

        room_messages_changed.connect(publish_room_changes, dispatch_uid="realtime.publishing")
