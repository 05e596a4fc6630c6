import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from partners.models import Organisation
from partners.services import organisation_set_verified


class Command(BaseCommand):
    help = (
        "Mark an organisation verified by the network's stewards (partners see `verified`), or "
        "withdraw it with --unverify. Recorded in the audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("organisation_id", help="As onboard_partner printed it.")
        parser.add_argument("--unverify", action="store_true", help="Withdraw verification.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            organisation = Organisation.objects.filter(pk=options["organisation_id"]).first()
        except ValidationError:
            organisation = None
        if organisation is None:
            raise CommandError(f"No organisation with id {options['organisation_id']!r}.")
        changed = organisation_set_verified(
            organisation=organisation, verified=not options["unverify"]
        )
        if options["json"]:
            result = {
                "organisation_id": str(organisation.pk),
                "verified": organisation.verified,
                "changed": changed,
            }
            self.stdout.write(json.dumps(result))
            return
        state = "verified" if organisation.verified else "not verified"
        news = "now" if changed else "already"
        self.stdout.write(f"{organisation.name} ({organisation.pk}) is {news} {state}.")
