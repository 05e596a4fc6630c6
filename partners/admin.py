"""Stewardship of the directory: verify and suspend organisations, oversee partnerships, rotate
OAuth client secrets and revoke tokens. Custom actions write a LogEntry whose message is one of
STEWARD_ACTIONS, which the audit trail records by name."""

from django.contrib import admin, messages
from django.db import models, transaction

from api.admin import DeclaredLookupsOnly
from api.audit.signals import STEWARD_ACTIONS, AuditedAdminMixin
from partners.models import Application, Organisation, Partnership
from partners.services import application_revoke_tokens, application_rotate_secret

if admin.site.is_registered(Application):
    admin.site.unregister(Application)


def _log(model_admin, request, obj, action: str) -> None:
    assert action in STEWARD_ACTIONS
    model_admin.log_change(request, obj, action)


# The stewards' actions on organisations, each named as in STEWARD_ACTIONS: its label, and the
# field it sets to which value.
ORGANISATION_ACTIONS = {
    "verify": ("Verify selected organisations", "verified", True),
    "unverify": ("Withdraw verification", "verified", False),
    "suspend": ("Suspend (their tokens stop working at once)", "suspended", True),
    "unsuspend": ("Lift suspension", "suspended", False),
}


def _setting_action(action: str, description: str, field: str, value: bool):
    @admin.action(description=description)
    def set_field(model_admin, request, queryset):
        changed = 0
        with transaction.atomic():
            for organisation in queryset.select_for_update():
                if getattr(organisation, field) != value:
                    setattr(organisation, field, value)
                    organisation.save(update_fields=[field, "updated"])
                    _log(model_admin, request, organisation, action)
                    changed += 1
        model_admin.message_user(request, f"{action}: {changed} organisation(s) changed.")

    set_field.__name__ = action
    return set_field


@admin.register(Organisation)
class OrganisationAdmin(DeclaredLookupsOnly, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "kind", "region", "verified", "suspended", "stats_opt_in", "created")
    list_filter = ("verified", "suspended", "kind", "community_led")
    search_fields = ("name", "region")
    readonly_fields = ("id", "created", "updated")
    actions = [_setting_action(action, *spec) for action, spec in ORGANISATION_ACTIONS.items()]
    # Django 6 assumes https for scheme-less URLs; say so now (and silence the deprecation).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Partnership)
class PartnershipAdmin(DeclaredLookupsOnly, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("id", "proposer", "partner", "status", "data_categories", "created")
    list_filter = ("status",)
    list_select_related = ("proposer", "partner")
    fields = (
        "id",
        "proposer",
        "partner",
        "status",
        "suspended_by",
        "data_categories",
        "purposes",
        "created",
        "updated",
    )
    readonly_fields = fields

    # Partnerships are proposed, accepted, suspended and ended by the organisations through
    # the API, whose services emit `partnership.changed`; an admin edit would bypass that.
    # Stewards who must stop a partner suspend the organisation instead.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Application)
class ApplicationAdmin(DeclaredLookupsOnly, AuditedAdminMixin, admin.ModelAdmin):
    """The client secret is never shown (only its hash is stored); rotating issues a new one
    displayed once. Applications are created with `manage.py onboard_partner`."""

    list_display = ("client_id", "name", "organisation", "resource_server", "created")
    list_filter = ("resource_server",)
    list_select_related = ("organisation",)
    search_fields = ("=client_id", "name", "organisation__name")
    fields = (
        "client_id",
        "name",
        "organisation",
        "client_type",
        "authorization_grant_type",
        "scopes",
        "resource_server",
        "created",
        "updated",
    )
    readonly_fields = (
        "client_id",
        "organisation",
        "client_type",
        "authorization_grant_type",
        "created",
        "updated",
    )
    actions = ("rotate_secret", "revoke_tokens")

    def has_add_permission(self, request):
        return False

    @admin.action(description="Rotate secret (revokes all tokens; the new secret is shown once)")
    def rotate_secret(self, request, queryset):
        for application in queryset:
            secret = application_rotate_secret(application=application)
            _log(self, request, application, "rotate secret")
            self.message_user(
                request,
                f"New secret for {application.client_id} (shown only now): {secret}",
                messages.WARNING,
            )

    @admin.action(description="Revoke all tokens")
    def revoke_tokens(self, request, queryset):
        total = 0
        for application in queryset:
            total += application_revoke_tokens(application=application)
            _log(self, request, application, "revoke tokens")
        self.message_user(request, f"{total} token(s) revoked.")
