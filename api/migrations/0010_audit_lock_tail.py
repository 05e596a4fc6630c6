"""`api_audit_lock_tail`: take the audit lock and read the chain's tail in one round trip.

Two statements because one would not do: a statement reads from the snapshot it started with,
which may predate the entry the lock's previous holder committed. A VOLATILE PL/pgSQL function
takes a new snapshot for each query in it, so the tail is read after the lock is held."""

from django.db import migrations

CREATE = """
CREATE FUNCTION api_audit_lock_tail(lock_key bigint, relaxed_commit boolean)
RETURNS TABLE (tail_sequence bigint, tail_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF relaxed_commit THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT e.sequence, e.hash FROM api_auditentry e ORDER BY e.sequence DESC LIMIT 1;
END
$$
"""

DROP = "DROP FUNCTION api_audit_lock_tail(bigint, boolean)"


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0009_scheduled_run"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
