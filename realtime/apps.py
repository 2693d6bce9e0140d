from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "realtime"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from core import broadcast
        from messaging import store
        from messaging.signals import room_messages_changed
        from realtime import receivers
        from realtime.publishing import publish_room_changes
        from rooms.models import Membership, Room

        room_messages_changed.connect(publish_room_changes, dispatch_uid="realtime.publishing")
        # A group commit's announcements reach the channel layer together, in one round trip.
        store.announce_batches_within(broadcast.together)
        post_save.connect(receivers.log_membership_saved, sender=Membership, dispatch_uid="realtime.member_logged")
        post_delete.connect(receivers.log_membership_ended, sender=Membership, dispatch_uid="realtime.member_gone")
        post_save.connect(receivers.log_room_changed, sender=Room, dispatch_uid="realtime.room_logged")
