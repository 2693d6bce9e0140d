"""`manage.py vapid_keys`: a new VAPID key pair for Web Push, printed as the settings to keep.

Keep the private key in the environment (or the secrets store), never in the repository. Changing
it later makes every browser's subscription useless: they subscribe again on their next visit.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management.base import BaseCommand
from py_vapid import b64urlencode


class Command(BaseCommand):
    help = "Print a new VAPID key pair (VAPID_PRIVATE_KEY for the environment, and its public key)."

    def handle(self, *args: Any, **options: Any) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        private = b64urlencode(key.private_numbers().private_value.to_bytes(32, "big"))
        public = b64urlencode(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
        self.stdout.write(f"VAPID_PRIVATE_KEY={private}\n")
        self.stdout.write(f"# public key (GET /api/push/key answers it): {public}\n")
