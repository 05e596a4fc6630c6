import django.contrib.postgres.fields.ranges
import django.contrib.postgres.indexes
from django.db import migrations, models

# Each service's weekly opening hours per time zone, as ranges of seconds of the local ISO week,
# one row per stretch (an index on a multirange would hold only its bounds: the whole week). The
# database keeps them from the schedules and locations whatever path writes those (the API, the
# admin, an HSDS import, bulk_create, raw SQL). `open_now` then probes, once per time zone or
# once per candidate, for a stretch that holds the current second of that zone's week.
OPENING_HOURS_SQL = """
CREATE FUNCTION partners_openinghours_refresh(service_ids uuid[]) RETURNS void AS $$
    DELETE FROM partners_openinghours WHERE service_id = ANY(service_ids);
    INSERT INTO partners_openinghours (service_id, time_zone, open_seconds)
    SELECT l.service_id, l.time_zone, piece
    FROM partners_location l
    JOIN partners_schedule s ON s.location_id = l.id
    CROSS JOIN LATERAL (
        SELECT (s.weekday - 1) * 86400 + floor(extract(epoch FROM s.opens_at))::int AS opens,
               (s.weekday - 1) * 86400 + floor(extract(epoch FROM s.closes_at))::int
               + CASE WHEN s.closes_at <= s.opens_at THEN 86400 ELSE 0 END AS closes
    ) w
    CROSS JOIN LATERAL unnest(ARRAY[
        int4range(w.opens, least(w.closes, 604800)),
        int4range(0, greatest(w.closes - 604800, 0))
    ]) AS piece
    WHERE l.service_id = ANY(service_ids) AND NOT isempty(piece);
$$ LANGUAGE sql;

CREATE FUNCTION partners_openinghours_schedules_changed() RETURNS trigger AS $$
BEGIN
    PERFORM partners_openinghours_refresh(array_agg(DISTINCT l.service_id))
    FROM changed_rows c JOIN partners_location l ON l.id = c.location_id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION partners_openinghours_schedules_updated() RETURNS trigger AS $$
BEGIN
    PERFORM partners_openinghours_refresh(array_agg(DISTINCT l.service_id))
    FROM (SELECT location_id FROM old_rows UNION SELECT location_id FROM new_rows) c
    JOIN partners_location l ON l.id = c.location_id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION partners_openinghours_locations_deleted() RETURNS trigger AS $$
BEGIN
    PERFORM partners_openinghours_refresh(array_agg(DISTINCT service_id)) FROM changed_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION partners_openinghours_locations_updated() RETURNS trigger AS $$
BEGIN
    PERFORM partners_openinghours_refresh(array_agg(DISTINCT c.service_id))
    FROM (
        SELECT o.service_id FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.time_zone IS DISTINCT FROM n.time_zone OR o.service_id <> n.service_id
        UNION SELECT n.service_id FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.time_zone IS DISTINCT FROM n.time_zone OR o.service_id <> n.service_id
    ) c;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER openinghours_insert AFTER INSERT ON partners_schedule
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partners_openinghours_schedules_changed();
CREATE TRIGGER openinghours_update AFTER UPDATE ON partners_schedule
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partners_openinghours_schedules_updated();
CREATE TRIGGER openinghours_delete AFTER DELETE ON partners_schedule
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partners_openinghours_schedules_changed();
CREATE TRIGGER openinghours_update AFTER UPDATE ON partners_location
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partners_openinghours_locations_updated();
CREATE TRIGGER openinghours_delete AFTER DELETE ON partners_location
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION partners_openinghours_locations_deleted();

SELECT partners_openinghours_refresh(array_agg(id)) FROM partners_service;
"""

OPENING_HOURS_REVERSE_SQL = """
DROP TRIGGER openinghours_insert ON partners_schedule;
DROP TRIGGER openinghours_update ON partners_schedule;
DROP TRIGGER openinghours_delete ON partners_schedule;
DROP TRIGGER openinghours_update ON partners_location;
DROP TRIGGER openinghours_delete ON partners_location;
DROP FUNCTION partners_openinghours_locations_updated();
DROP FUNCTION partners_openinghours_locations_deleted();
DROP FUNCTION partners_openinghours_schedules_updated();
DROP FUNCTION partners_openinghours_schedules_changed();
DROP FUNCTION partners_openinghours_refresh(uuid[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0008_hsds_import"),
    ]

    operations = [
        migrations.CreateModel(
            name="OpeningHours",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("service_id", models.UUIDField(db_index=True)),
                ("time_zone", models.CharField(max_length=64)),
                ("open_seconds", django.contrib.postgres.fields.ranges.IntegerRangeField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["time_zone"], name="openinghours_time_zone"),
                    django.contrib.postgres.indexes.GistIndex(
                        fields=["open_seconds"], name="openinghours_open_seconds"
                    ),
                ],
            },
        ),
        migrations.RunSQL(OPENING_HOURS_SQL, OPENING_HOURS_REVERSE_SQL),
    ]
