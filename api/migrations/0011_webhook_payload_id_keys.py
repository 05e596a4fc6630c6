"""Webhook payloads name every id `<name>_id` (issue 12): the events already in the outbox and
the endpoints' data filters (FHIR Subscriptions filter on the referral's parties) follow."""

from django.db import migrations

SERVICES = """
UPDATE api_event SET data = jsonb_set(data, '{services}', (
    SELECT coalesce(jsonb_agg((s - '%(old)s') || jsonb_build_object('%(new)s', s->'%(old)s')
                              ORDER BY n), '[]'::jsonb)
    FROM jsonb_array_elements(data->'services') WITH ORDINALITY AS e(s, n)))
WHERE type = 'capacity.updated' AND jsonb_typeof(data->'services') = 'array'
"""

FORWARD = [
    """UPDATE api_event
    SET data = (data - 'referral' - 'sender' - 'receiver') || jsonb_strip_nulls(jsonb_build_object(
        'referral_id', data->'referral', 'sender_id', data->'sender',
        'receiver_id', data->'receiver'))
    WHERE type LIKE 'referral.%' AND data ? 'referral'""",
    """UPDATE api_event SET data = (data - 'note') || jsonb_build_object('note_id', data->'note')
    WHERE type = 'referral.note_added' AND data ? 'note'""",
    """UPDATE api_event
    SET data = (data - 'webhook_endpoint')
        || jsonb_build_object('webhook_endpoint_id', data->'webhook_endpoint')
    WHERE type = 'ping' AND data ? 'webhook_endpoint'""",
    SERVICES % {"old": "id", "new": "service_id"},
    """UPDATE api_webhookendpoint
    SET data_filter = (data_filter - 'sender' - 'receiver') || jsonb_strip_nulls(
        jsonb_build_object('sender_id', data_filter->'sender',
                           'receiver_id', data_filter->'receiver'))
    WHERE data_filter ?| ARRAY['sender', 'receiver']""",
]

BACKWARD = [
    """UPDATE api_event
    SET data = (data - 'referral_id' - 'sender_id' - 'receiver_id')
        || jsonb_strip_nulls(jsonb_build_object(
            'referral', data->'referral_id', 'sender', data->'sender_id',
            'receiver', data->'receiver_id'))
    WHERE type LIKE 'referral.%' AND data ? 'referral_id'""",
    """UPDATE api_event SET data = (data - 'note_id') || jsonb_build_object('note', data->'note_id')
    WHERE type = 'referral.note_added' AND data ? 'note_id'""",
    """UPDATE api_event
    SET data = (data - 'webhook_endpoint_id')
        || jsonb_build_object('webhook_endpoint', data->'webhook_endpoint_id')
    WHERE type = 'ping' AND data ? 'webhook_endpoint_id'""",
    SERVICES % {"old": "service_id", "new": "id"},
    """UPDATE api_webhookendpoint
    SET data_filter = (data_filter - 'sender_id' - 'receiver_id') || jsonb_strip_nulls(
        jsonb_build_object('sender', data_filter->'sender_id',
                           'receiver', data_filter->'receiver_id'))
    WHERE data_filter ?| ARRAY['sender_id', 'receiver_id']""",
]


class Migration(migrations.Migration):
    dependencies = [("api", "0010_audit_lock_tail")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD, elidable=False)]
