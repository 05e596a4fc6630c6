"""Referral metadata for stewards: who referred to whom, for which service, and where it
stands. No personal field is registered, not even ciphertext, and no superuser can change
that from the admin: personal data is read only through the API by the two organisations."""

from django.contrib import admin

from api.admin import ReadOnly, ReadOnlyAdmin
from referrals.models import Referral, TimelineEntry

METADATA_FIELDS = (
    "id",
    "sender",
    "receiver",
    "service",
    "partnership",
    "urgency",
    "status",
    "decline_reason",
    "outcome",
    "personal_data",
    "respond_by",
    "created",
    "updated",
    "closed",
)


class TimelineInline(ReadOnly, admin.TabularInline):
    model = TimelineEntry
    fields = (
        "at",
        "kind",
        "actor",
        "side",
        "method",
        "from_status",
        "to_status",
        "code",
        "version",
    )
    readonly_fields = fields
    extra = 0


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("id", "sender", "receiver", "urgency", "status", "personal_data", "created")
    list_filter = ("status", "urgency", "personal_data")
    list_select_related = ("sender", "receiver")
    # Only the exact id: searching by anything else would let staff probe for a person.
    search_fields = ("=id",)
    fields = METADATA_FIELDS
    readonly_fields = METADATA_FIELDS
    inlines = (TimelineInline,)
