from django.apps import AppConfig


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_save

        from rooms import receivers
        from rooms.models import Membership

        pre_save.connect(receivers.note_membership_move, sender=Membership, dispatch_uid="rooms.membership_move")
        post_delete.connect(receivers.revoke_membership, sender=Membership, dispatch_uid="rooms.membership_ended")
        post_save.connect(receivers.count_new_member, sender=Membership, dispatch_uid="rooms.member_counted")
