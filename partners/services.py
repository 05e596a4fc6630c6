"""Writes for the partner directory. Keyword-only, one transaction each, raising domain errors."""

import secrets

from django.conf import settings
from django.db import transaction
from oauth2_provider.models import get_access_token_model

from api.errors import InvalidInput
from partners.models import Application, Organisation, OrganisationKind


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def organisation_onboard(
    *, name: str, kind: str, scopes: list[str] | None = None, **profile
) -> tuple[Organisation, Application, str]:
    """Create an organisation with one client-credentials application. Returns the plaintext
    client secret: the only time anyone sees it, since only its hash is stored."""
    if kind not in OrganisationKind.values:
        raise InvalidInput(
            f"Unknown organisation kind {kind!r}.",
            errors=[{"pointer": "/kind", "detail": "Unknown kind."}],
        )
    scopes = list(settings.SCOPES) if scopes is None else scopes
    unknown = sorted(set(scopes) - set(settings.SCOPES))
    if unknown:
        raise InvalidInput(
            "Unknown scopes: " + " ".join(unknown),
            errors=[{"pointer": "/scopes", "detail": "Unknown scope."}],
        )
    organisation = Organisation.objects.create(name=name, kind=kind, **profile)
    application, secret = application_create(organisation=organisation, scopes=scopes)
    return organisation, application, secret


def application_create(
    *, organisation: Organisation, scopes: list[str], client_id: str | None = None
) -> tuple[Application, str]:
    secret = _new_secret()
    application = Application(
        name=f"{organisation.name} API client",
        organisation=organisation,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        scopes=scopes,
    )
    if client_id:
        application.client_id = client_id
    application.save()
    return application, secret


@transaction.atomic
def application_rotate_secret(*, application: Application) -> str:
    """Issue a new secret and revoke every token of the client: whoever held the old secret
    may hold its tokens too."""
    secret = _new_secret()
    application.client_secret = secret
    application.save(update_fields=["client_secret", "updated"])
    application_revoke_tokens(application=application)
    return secret


def application_revoke_tokens(*, application: Application) -> int:
    deleted, _ = get_access_token_model().objects.filter(application=application).delete()
    return deleted
