"""Admin actions and admin sign-ins into the audit trail. The entry names the staff user and
the object by id; the LogEntry's object_repr and change message are not copied."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from api.audit.services import audit_record

ADMIN_FLAGS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}
# Custom admin actions log one of these as the LogEntry message, and it becomes the audit
# action; Django's own change messages (JSON lists of field names) are never copied.
STEWARD_ACTIONS = frozenset(
    {
        "verify",
        "unverify",
        "suspend",
        "unsuspend",
        "rotate secret",
        "revoke tokens",
        "disable",
        "enable",
    }
)


def staff_user_id(username: str) -> int | None:
    model = get_user_model()
    return (
        model.objects.filter(**{model.USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_log_entry")
def record_admin_change(sender, instance, created, **kwargs):
    if not created:
        return
    content_type = instance.content_type
    audit_record(
        action="admin "
        + (
            instance.change_message
            if instance.change_message in STEWARD_ACTIONS
            else ADMIN_FLAGS.get(instance.action_flag, "action")
        ),
        result="ok",
        object_type=content_type.model if content_type else "",
        object_id=instance.object_id or "",
        user=instance.user_id,
    )


@receiver(user_logged_in, dispatch_uid="audit_admin_login")
def record_login(sender, request, user, **kwargs):
    audit_record(
        action="admin login", result="ok", object_type="user", object_id=user.pk, user=user
    )


@receiver(user_login_failed, dispatch_uid="audit_admin_login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs):
    """The username typed is not stored: it may be a mistyped password or someone else's
    name. Only the id of an existing account it names is kept."""
    record_refused_login(credentials.get("username") or "", "failed")


def record_refused_login(username: str, result: str) -> None:
    """An admin sign-in that did not go through, under the id of the account `username` names
    (if any); the username itself is never stored."""
    user_id = staff_user_id(username)
    audit_record(
        action="admin login",
        result=result,
        object_type="user",
        object_id=user_id or "",
        user=user_id,
    )


class AuditedAdminMixin:
    """Deleting several objects at once writes its LogEntries with bulk_create, which sends
    no post_save; record those here. Every ModelAdmin that allows deletion uses this."""

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        if len(entries) > 1:
            for entry in entries:
                record_admin_change(LogEntry, entry, created=True)
        return entries
