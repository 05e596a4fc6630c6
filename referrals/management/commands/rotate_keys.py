"""Rewrap every epoch key with the primary key-encryption key.

Rotation without downtime: add the new KEK first in REFERRAL_KEKS (the old one stays listed so
existing epoch keys still unwrap), deploy, run this command, then remove the old KEK. Only the
epoch key files in the keyring are rewritten (and data keys from before epochs, which were
wrapped by a KEK directly, are moved under the newest epoch); no ciphertext is touched."""

from django.core.management.base import BaseCommand

from referrals import crypto
from referrals.services import keys_rotate


class Command(BaseCommand):
    help = "Rewrap every epoch key with the primary key-encryption key."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500, help="Data keys per transaction.")

    def handle(self, *args, batch, **options):
        primary = crypto.keks().primary
        rewrapped, moved = keys_rotate(batch=batch)
        self.stdout.write(
            f"Rewrapped {rewrapped} epoch keys with key-encryption key {primary}; moved {moved} "
            "data keys from before epochs under the newest epoch."
        )
