"""System checks of our own settings, run by `manage.py check --deploy` (CI runs it under
production settings)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def loopback_webhooks_check(app_configs, **kwargs):
    """ALLOW_LOOPBACK_WEBHOOKS lets any partner point a webhook at the server's own loopback
    services (SSRF); it exists for `make run` and the tests, never for a deployment."""
    if settings.ALLOW_LOOPBACK_WEBHOOKS:
        return [
            Error(
                "ALLOW_LOOPBACK_WEBHOOKS is set: partners could send webhooks to this server's "
                "own loopback services.",
                hint="Unset ALLOW_LOOPBACK_WEBHOOKS in the deployment's environment.",
                id="api.E001",
            )
        ]
    return []
