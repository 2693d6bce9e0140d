from typing import Any

from django.core.management.base import BaseCommand

from messaging import store


class Command(BaseCommand):
    help = "Create the MongoDB indexes the message store relies on (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        store.ensure_indexes()
        self.stdout.write(self.style.SUCCESS("MongoDB indexes are in place."))
