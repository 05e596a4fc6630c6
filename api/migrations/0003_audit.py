from django.db import migrations, models

# The audit trail is append-only in the database itself, not only in the ORM: UPDATE is always
# refused, and DELETE only inside the retention job's transaction (which sets srn.audit_prune)
# and only for entries at or before the latest anchor, i.e. a whole prefix of the chain.
GUARD = """
CREATE FUNCTION api_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('srn.audit_prune', true) = 'on'
       AND OLD.sequence <= (SELECT max(pruned_through) FROM api_auditanchor) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER api_auditentry_append_only
    BEFORE UPDATE OR DELETE ON api_auditentry
    FOR EACH ROW EXECUTE FUNCTION api_audit_append_only();
CREATE TRIGGER api_auditanchor_append_only
    BEFORE UPDATE OR DELETE ON api_auditanchor
    FOR EACH ROW EXECUTE FUNCTION api_audit_anchor_append_only();
"""

ANCHOR_GUARD = """
CREATE FUNCTION api_audit_anchor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit anchors are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

UNGUARD = """
DROP TRIGGER IF EXISTS api_auditentry_append_only ON api_auditentry;
DROP TRIGGER IF EXISTS api_auditanchor_append_only ON api_auditanchor;
DROP FUNCTION IF EXISTS api_audit_append_only();
DROP FUNCTION IF EXISTS api_audit_anchor_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_idempotency_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("sequence", models.BigIntegerField(primary_key=True, serialize=False)),
                ("time", models.DateTimeField()),
                ("actor_organisation", models.UUIDField(blank=True, null=True)),
                ("actor_application", models.CharField(blank=True, max_length=100)),
                ("actor_user", models.IntegerField(blank=True, null=True)),
                ("action", models.CharField(max_length=120)),
                ("object_type", models.CharField(blank=True, max_length=60)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("result", models.CharField(max_length=40)),
                ("request_id", models.CharField(blank=True, max_length=128)),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64, unique=True)),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-sequence"],
            },
        ),
        migrations.CreateModel(
            name="AuditAnchor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("pruned_through", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["-pruned_through"],
            },
        ),
        migrations.RunSQL(ANCHOR_GUARD + GUARD, UNGUARD),
    ]
