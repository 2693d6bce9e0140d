from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        # Tells drf-spectacular how this app's JWT authentication appears in the schema (bearer).
        import core.schema  # noqa: F401
