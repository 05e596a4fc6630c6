from django.db import migrations, models

# A confidential location is measured, for every caller it is hidden from, from its coarse
# point: 1 to 2 km away in a random direction, drawn once and stored, so no number of requests
# averages it away. The database draws it, so every write path (the API, the admin, bulk_create,
# raw SQL) does it the same way; it is drawn again only when the coordinates change.
COARSE_POINT_SQL = """
-- A uniform fraction in [0, 1) from the operating system's strong random source (through
-- gen_random_uuid): random() is a generator whose state its own outputs give away.
CREATE FUNCTION partners_strong_random() RETURNS float8 AS $$
    SELECT ('x' || left(gen_random_uuid()::text, 8))::bit(32)::bigint / 4294967296.0::float8
$$ LANGUAGE sql VOLATILE;

-- The point 1 to 2 km from (lat, lon) in a random direction, on the sphere the search measures
-- on (partners.search._haversine), so the drawn offset is the distance it shows.
CREATE FUNCTION partners_coarse_point(
    lat float8, lon float8, OUT latitude float8, OUT longitude float8
) AS $$
DECLARE
    bearing float8 := 2 * pi() * partners_strong_random();
    angle float8 := (1 + partners_strong_random()) / 6371.0088;
    phi float8 := radians(lat);
    phi2 float8;
    lambda2 float8;
BEGIN
    phi2 := asin(sin(phi) * cos(angle) + cos(phi) * sin(angle) * cos(bearing));
    lambda2 := radians(lon)
        + atan2(sin(bearing) * sin(angle) * cos(phi), cos(angle) - sin(phi) * sin(phi2));
    latitude := degrees(phi2);
    longitude := degrees(lambda2);
    longitude := longitude - 360 * floor((longitude + 180) / 360);
END;
$$ LANGUAGE plpgsql VOLATILE;

CREATE FUNCTION partners_location_coarse_point() RETURNS trigger AS $$
BEGIN
    IF NEW.latitude IS NULL OR NEW.longitude IS NULL THEN
        NEW.coarse_latitude := NULL;
        NEW.coarse_longitude := NULL;
    ELSIF TG_OP = 'UPDATE' AND OLD.coarse_latitude IS NOT NULL
            AND NEW.latitude = OLD.latitude AND NEW.longitude = OLD.longitude THEN
        -- Whatever the UPDATE wrote (Django's save writes every column): the point stays.
        NEW.coarse_latitude := OLD.coarse_latitude;
        NEW.coarse_longitude := OLD.coarse_longitude;
    ELSE
        SELECT p.latitude, p.longitude INTO NEW.coarse_latitude, NEW.coarse_longitude
        FROM partners_coarse_point(NEW.latitude, NEW.longitude) p;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER location_coarse_point BEFORE INSERT OR UPDATE ON partners_location
    FOR EACH ROW EXECUTE FUNCTION partners_location_coarse_point();

-- Migration 0005's refresh, now also copying the owner, and adding for each confidential
-- location a second row at its coarse point: the row the search uses for callers the location
-- is hidden from (its twin, at the coordinates, serves the owner and its active partners).
CREATE OR REPLACE FUNCTION partners_searchentry_refresh(service_ids uuid[]) RETURNS void AS $$
BEGIN
    -- Two transactions rebuilding one service must take turns, or the later one's delete
    -- would miss the earlier one's rows: the service row lock orders them.
    PERFORM 1 FROM partners_service WHERE id = ANY(service_ids) ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM partners_searchentry WHERE service_id = ANY(service_ids);
    INSERT INTO partners_searchentry (
        service_id, organisation_id, location_id, name, status, organisation_suspended,
        organisation_kind, taxonomy_codes, language_keys, cost, no_id_required,
        no_immigration_status_questions, anonymous_access, walk_in, sex_worker_friendly,
        trans_friendly, accepting_referrals, available, valid_until, latitude, longitude,
        confidential, coarse
    )
    SELECT s.id, s.organisation_id, l.id, s.name, s.status, o.suspended, o.kind,
           s.taxonomy_codes, partners_language_keys(s.languages), s.cost, s.no_id_required,
           s.no_immigration_status_questions, s.anonymous_access, s.walk_in,
           s.sex_worker_friendly, s.trans_friendly, c.accepting_referrals,
           c.available, c.valid_until, l.latitude, l.longitude,
           coalesce(l.confidential, false), l.coarse
    FROM partners_service s
    JOIN partners_organisation o ON o.id = s.organisation_id
    LEFT JOIN partners_capacity c ON c.service_id = s.id
    CROSS JOIN LATERAL (
        SELECT NULL::uuid AS id, NULL::float8 AS latitude, NULL::float8 AS longitude,
               NULL::boolean AS confidential, false AS coarse
        UNION ALL
        SELECT lo.id, lo.latitude, lo.longitude, lo.confidential, false
        FROM partners_location lo WHERE lo.service_id = s.id
        UNION ALL
        SELECT lo.id, lo.coarse_latitude, lo.coarse_longitude, true, true
        FROM partners_location lo
        WHERE lo.service_id = s.id AND lo.confidential AND lo.coarse_latitude IS NOT NULL
    ) l
    WHERE s.id = ANY(service_ids);
END;
$$ LANGUAGE plpgsql;

-- Draw a point for every located row (the trigger fills a missing one), then rebuild every
-- service's entries.
UPDATE partners_location SET coarse_latitude = NULL
    WHERE latitude IS NOT NULL AND longitude IS NOT NULL;
SELECT partners_searchentry_refresh(ARRAY(SELECT id FROM partners_service));
"""

COARSE_POINT_REVERSE_SQL = """
CREATE OR REPLACE FUNCTION partners_searchentry_refresh(service_ids uuid[]) RETURNS void AS $$
BEGIN
    PERFORM 1 FROM partners_service WHERE id = ANY(service_ids) ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM partners_searchentry WHERE service_id = ANY(service_ids);
    INSERT INTO partners_searchentry (
        service_id, location_id, name, status, organisation_suspended, organisation_kind,
        taxonomy_codes, language_keys, cost, no_id_required, no_immigration_status_questions,
        anonymous_access, walk_in, sex_worker_friendly, trans_friendly, accepting_referrals,
        available, valid_until, latitude, longitude, confidential
    )
    SELECT s.id, l.id, s.name, s.status, o.suspended, o.kind,
           s.taxonomy_codes, partners_language_keys(s.languages), s.cost, s.no_id_required,
           s.no_immigration_status_questions, s.anonymous_access, s.walk_in,
           s.sex_worker_friendly, s.trans_friendly, c.accepting_referrals,
           c.available, c.valid_until, l.latitude, l.longitude, coalesce(l.confidential, false)
    FROM partners_service s
    JOIN partners_organisation o ON o.id = s.organisation_id
    LEFT JOIN partners_capacity c ON c.service_id = s.id
    CROSS JOIN LATERAL (
        SELECT NULL::uuid AS id, NULL::float8 AS latitude, NULL::float8 AS longitude,
               NULL::boolean AS confidential
        UNION ALL
        SELECT lo.id, lo.latitude, lo.longitude, lo.confidential
        FROM partners_location lo WHERE lo.service_id = s.id
    ) l
    WHERE s.id = ANY(service_ids);
END;
$$ LANGUAGE plpgsql;
DELETE FROM partners_searchentry WHERE coarse;
DROP TRIGGER location_coarse_point ON partners_location;
DROP FUNCTION partners_location_coarse_point();
DROP FUNCTION partners_coarse_point(float8, float8);
DROP FUNCTION partners_strong_random();
"""

FILTERS = (
    "confidential",
    "taxonomy_codes",
    "language_keys",
    "cost",
    "organisation_kind",
    "no_id_required",
    "no_immigration_status_questions",
    "anonymous_access",
    "walk_in",
    "sex_worker_friendly",
    "trans_friendly",
    "accepting_referrals",
    "available",
    "valid_until",
)


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0006_application_introspection_only_resource_servers"),
    ]

    operations = [
        migrations.AddField(
            model_name="location",
            name="coarse_latitude",
            field=models.FloatField(
                editable=False,
                help_text="The coarse point: 1-2 km from the coordinates in a random direction, "
                "drawn once when they are set or change. The search measures a confidential "
                "location from it for every caller it is hidden from.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="location",
            name="coarse_longitude",
            field=models.FloatField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="organisation_id",
            field=models.UUIDField(
                help_text="Whose it is: decides who sees it exactly.", null=True
            ),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="coarse",
            field=models.BooleanField(
                default=False,
                help_text="The row of a confidential location at its coarse point, which the "
                "search uses for callers the location is hidden from; its twin at the "
                "coordinates serves the owner and the owner's active partners.",
            ),
            preserve_default=False,
        ),
        migrations.RunSQL(COARSE_POINT_SQL, COARSE_POINT_REVERSE_SQL),
        migrations.AlterField(
            model_name="searchentry",
            name="organisation_id",
            field=models.UUIDField(help_text="Whose it is: decides who sees it exactly."),
        ),
        migrations.RemoveIndex(
            model_name="searchentry",
            name="searchentry_near",
        ),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(
                condition=models.Q(
                    ("organisation_suspended", False),
                    ("status", "active"),
                    ("location_id__isnull", False),
                ),
                fields=["latitude", "longitude"],
                include=("service_id", "organisation_id", "coarse", *FILTERS),
                name="searchentry_near",
            ),
        ),
    ]
