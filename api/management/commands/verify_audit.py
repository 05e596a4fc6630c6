from django.core.management.base import BaseCommand, CommandError

from api.audit.selectors import Head, audit_head, audit_verify


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's hash chain and report the first broken entry "
        "(exit status 1). --head SEQUENCE:HASH also checks a head a partner kept earlier."
    )

    def add_arguments(self, parser):
        parser.add_argument("--head", help="A previously published head, as SEQUENCE:HASH.")

    def handle(self, *args, head=None, **options):
        known = None
        if head:
            sequence, _, digest = head.partition(":")
            if not sequence.isdigit() or len(digest) != 64:
                raise CommandError("--head must be SEQUENCE:HASH (64 hex digits).")
            known = Head(int(sequence), digest.lower())
        broken = audit_verify(known_head=known)
        if broken is not None:
            raise CommandError(f"audit trail broken at entry #{broken.sequence}: {broken.reason}")
        current = audit_head()
        self.stdout.write(f"audit trail intact through #{current.sequence} ({current.hash})")
