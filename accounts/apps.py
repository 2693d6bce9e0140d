from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        # Tells drf-spectacular how this app's JWT authentication appears in the schema (bearer).
        from django.db.models.signals import post_delete, post_save, pre_save

        import core.schema  # noqa: F401
        from accounts import receivers
        from accounts.models import User

        pre_save.connect(receivers.note_access_change, sender=User, dispatch_uid="accounts.access_change")
        post_save.connect(receivers.revoke_if_access_lost, sender=User, dispatch_uid="accounts.access_lost")
        post_delete.connect(receivers.revoke_deleted, sender=User, dispatch_uid="accounts.deleted")
