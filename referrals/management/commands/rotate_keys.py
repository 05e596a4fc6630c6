"""Rewrap every referral data key with the primary key-encryption key.

Rotation without downtime: add the new KEK first in REFERRAL_KEKS (the old one stays listed so
existing keys still unwrap), deploy, run this command, then remove the old KEK. Only the small
wrapped keys are rewritten; no ciphertext is touched."""

from django.core.management.base import BaseCommand

from referrals import crypto
from referrals.services import keys_rotate


class Command(BaseCommand):
    help = "Rewrap every referral data key with the primary key-encryption key."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500, help="Keys per transaction.")

    def handle(self, *args, batch, **options):
        primary = crypto.keyring().primary
        rewrapped = keys_rotate(batch=batch)
        self.stdout.write(f"Rewrapped {rewrapped} data keys with key-encryption key {primary}.")
