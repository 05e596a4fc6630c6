import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from api.errors import DomainError
from partners.models import Application, OrganisationKind
from partners.services import application_rotate_secret, organisation_onboard


class Command(BaseCommand):
    help = (
        "Create an organisation and its OAuth client, or rotate a client's secret. The secret is "
        "printed once and stored only as a hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name")
        parser.add_argument("--kind", choices=OrganisationKind.values)
        parser.add_argument(
            "--scopes",
            nargs="+",
            choices=sorted(settings.SCOPES),
            help="Scopes to grant (default: all partner scopes).",
        )
        parser.add_argument(
            "--rotate-secret",
            metavar="CLIENT_ID",
            help="Issue a new secret for this client and revoke its tokens.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        if options["rotate_secret"]:
            application = Application.objects.filter(client_id=options["rotate_secret"]).first()
            if application is None:
                raise CommandError(f"No client with id {options['rotate_secret']!r}.")
            secret = application_rotate_secret(application=application)
            result = {
                "organisation_id": str(application.organisation_id),
                "client_id": application.client_id,
                "client_secret": secret,
            }
        else:
            if not options["name"] or not options["kind"]:
                raise CommandError("--name and --kind are required to onboard a partner.")
            try:
                organisation, application, secret = organisation_onboard(
                    name=options["name"], kind=options["kind"], scopes=options["scopes"]
                )
            except DomainError as exc:
                raise CommandError(exc.detail) from exc
            result = {
                "organisation_id": str(organisation.id),
                "client_id": application.client_id,
                "client_secret": secret,
            }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key}: {value}")
            self.stdout.write("The secret is shown only now; store it safely.")
