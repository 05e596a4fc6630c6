"""Stewardship: the audit trail (read only), webhook endpoints, and the admin sign-in form
that slows down password guessing. Importing api.audit.signals connects the receivers that put
every admin action and sign-in into the audit trail."""

import hashlib
import time

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from api.audit.models import AuditAnchor, AuditEntry
from api.audit.signals import AuditedAdminMixin, record_refused_login
from api.models import RateLimitWindow
from api.throttling import hit, parse_rate
from api.webhooks.models import ENDPOINT_STATE_FIELDS, WebhookEndpoint
from api.webhooks.services import endpoint_disable, endpoint_update


class DeclaredLookupsChangeList(ChangeList):
    def get_filters(self, request):
        filters = super().get_filters(request)
        # What no declared filter consumed would go straight into queryset.filter().
        undeclared = set(filters[2])
        if self.date_hierarchy:
            undeclared -= {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"}
        if undeclared:
            raise DisallowedModelAdminLookup("Filtering on an undeclared lookup is not allowed.")
        return filters


class DeclaredLookupsOnly:
    """Every ModelAdmin of the project filters only through its declared `list_filter` (and
    `date_hierarchy`). Django's own `lookup_allowed` accepts any local field in the query
    string, so `?claim_code=…` or `?secret__startswith=whsec_…` would search fields the admin
    never shows, one guess at a time. An undeclared lookup is a 400."""

    def get_changelist(self, request, **kwargs):
        return DeclaredLookupsChangeList


# Tokens are revoked per application (partners admin); their rows hold only checksums and
# there is nothing a steward needs to read in them.
for model in (
    get_access_token_model(),
    get_refresh_token_model(),
    get_grant_model(),
    get_id_token_model(),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


def _login_key(username: str) -> str:
    return "admin-login:" + hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def login_failures(username: str, window: int) -> int:
    """Failed sign-ins for this username in the current window, without counting one more."""
    start = int(time.time())
    start -= start % window
    row = RateLimitWindow.objects.filter(key=_login_key(username), window_start=start).first()
    return row.count if row else 0


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """After ADMIN_LOGIN_FAILURES failed sign-ins for one username in the window, every further
    attempt is refused without checking the password, so guessing gets nowhere. Keyed on the
    username (hashed), not the address: no IP address is stored anywhere."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins for this account. Try again later.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        limit, window = parse_rate(getattr(settings, "ADMIN_LOGIN_FAILURES", "5/h"))
        if username and login_failures(username, window) >= limit:
            record_refused_login(username, "throttled")
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError:
            if username:
                hit(_login_key(username), limit, window)
            raise


admin.site.login_form = ThrottledAdminAuthenticationForm

# Staff accounts and groups: the same admin, with bulk deletions recorded in the audit trail.
for model, model_admin in ((get_user_model(), UserAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(
        model,
        type(model_admin.__name__, (DeclaredLookupsOnly, AuditedAdminMixin, model_admin), {}),
    )


class ReadOnly:
    """Nothing added, changed or deleted, whatever the staff member's permissions: for a
    ModelAdmin or an inline (whose add permission also takes the object)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnly, DeclaredLookupsOnly, admin.ModelAdmin):
    pass


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "sequence",
        "time",
        "action",
        "object_type",
        "object_id",
        "result",
        "actor_organisation",
        "actor_application",
        "actor_user",
    )
    list_filter = ("result", "object_type")
    search_fields = ("=object_id", "=request_id", "=actor_application", "action")
    show_full_result_count = False


@admin.register(AuditAnchor)
class AuditAnchorAdmin(ReadOnlyAdmin):
    list_display = ("pruned_through", "hash", "created")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(DeclaredLookupsOnly, AuditedAdminMixin, admin.ModelAdmin):
    """Status at a glance and a way to stop deliveries. Signing secrets are never shown."""

    list_display = ("url", "organisation", "active", "failing_since", "disabled_at", "created")
    list_filter = ("active",)
    list_select_related = ("organisation",)
    search_fields = ("url", "organisation__name")
    fields = ("id", "organisation", *ENDPOINT_STATE_FIELDS, "created", "updated")
    readonly_fields = fields
    actions = ("disable", "enable")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Disable selected endpoints")
    def disable(self, request, queryset):
        for endpoint in queryset.filter(active=True):
            endpoint_disable(endpoint_id=endpoint.pk, reason="Disabled by a network steward.")
            self.log_change(request, endpoint, "disable")
        self.message_user(request, "Endpoints disabled.")

    @admin.action(description="Re-enable selected endpoints (delivers what waited)")
    def enable(self, request, queryset):
        for endpoint in queryset.filter(active=False):
            endpoint_update(endpoint=endpoint, active=True)
            self.log_change(request, endpoint, "enable")
        self.message_user(request, "Endpoints re-enabled.")
