import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from api.errors import DomainError
from partners.api.serializers import OrganisationUpdateSerializer
from partners.models import Application, OrganisationKind
from partners.services import application_rotate_secret, organisation_onboard


def profile_from_options(options: dict) -> dict:
    """The profile the options give, validated by the serializer the API validates an
    organisation's own edits with, so a tag or a length the API refuses is refused here too."""
    given = {
        name: options[name]
        for name in ("name", "description", "region", "languages", "community_led")
        if options[name] is not None
    }
    serializer = OrganisationUpdateSerializer(data=given, partial=True)
    if not serializer.is_valid():
        raise CommandError(" ".join(option_errors(serializer.errors)))
    return serializer.validated_data


def option_errors(errors, option: str = "") -> list[str]:
    """DRF's nested error lists as `--option: message` (a language's position included)."""
    if isinstance(errors, dict):
        return [
            message
            for key, value in errors.items()
            for message in option_errors(
                value, f"{option}[{key}]" if option else "--" + str(key).replace("_", "-")
            )
        ]
    return [f"{option}: {message}" for message in errors]


class Command(BaseCommand):
    help = (
        "Create an organisation and its OAuth client, or rotate a client's secret. The secret is "
        "printed once and stored only as a hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name")
        parser.add_argument("--kind", choices=OrganisationKind.values)
        parser.add_argument("--description", help="Public description of the organisation.")
        parser.add_argument("--region", help="Where it works, e.g. a city or a country.")
        parser.add_argument(
            "--languages",
            nargs="+",
            metavar="TAG",
            help="Languages it works in, as BCP 47 tags (e.g. pt en th).",
        )
        parser.add_argument(
            "--community-led",
            action="store_true",
            default=None,
            help="Run by the community it serves (e.g. by sex workers).",
        )
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
            profile = profile_from_options(options)
            try:
                organisation, application, secret = organisation_onboard(
                    kind=options["kind"], scopes=options["scopes"], **profile
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
