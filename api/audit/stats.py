"""Network statistics for advocacy, from referral metadata only (so they survive the deletion
of personal data). Small cells are suppressed: a count from 1 to 4 is reported as "<5", and
when a breakdown would have exactly one suppressed cell, the next smallest is suppressed too,
so it cannot be recovered by subtraction. Periods are whole UTC days, which limits what can
be learnt by differencing two nearly identical periods."""

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from partners.models import Organisation

SUPPRESSED = "<5"
THRESHOLD = 5
# The first answer the person gets: the receiver accepts or declines. Marking a referral
# received only says it was opened.
RESPONSE_STATUSES = ("accepted", "declined")


def suppress(count: int) -> int | str:
    return SUPPRESSED if 0 < count < THRESHOLD else count


def suppress_breakdown(counts: dict[str, int]) -> dict[str, int | str]:
    out = {key: suppress(value) for key, value in counts.items()}
    hidden = [key for key, value in out.items() if value == SUPPRESSED]
    shown = sorted((value, key) for key, value in out.items() if value != SUPPRESSED)
    if len(hidden) == 1 and shown:
        out[shown[0][1]] = SUPPRESSED
    return dict(sorted(out.items()))


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def _grouped(queryset, field: str) -> dict[str, int]:
    rows = queryset.exclude(**{field: ""}).values_list(field).annotate(n=Count("pk"))
    return dict(rows)


_TAXONOMY = """
SELECT code, count(*) FROM referrals_referral r, unnest(r.needs) AS code
WHERE r.created >= %s AND r.created < %s GROUP BY code
"""

_FIRST_RESPONSE = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM (
    SELECT extract(epoch FROM min(t.at) - r.created) AS seconds
    FROM referrals_referral r JOIN referrals_timelineentry t ON t.referral_id = r.id
    WHERE r.created >= %s AND r.created < %s
      AND t.kind = 'status_changed' AND t.to_status = ANY(%s)
    GROUP BY r.id, r.created
) AS firsts
"""


def referral_stats(*, start: date, end: date) -> dict:
    """Counts for referrals created from `start` to `end` (both inclusive, UTC days)."""
    from referrals.models import Referral

    lower, upper = _bounds(start, end)
    referrals = Referral.objects.filter(created__gte=lower, created__lt=upper).order_by()
    with connection.cursor() as cursor:
        cursor.execute(_TAXONOMY, [lower, upper])
        taxonomy = dict(cursor.fetchall())
        cursor.execute(_FIRST_RESPONSE, [lower, upper, list(RESPONSE_STATUSES)])
        responded, median_seconds = cursor.fetchone()
    opted_in = Organisation.objects.filter(stats_opt_in=True)
    sent = dict(referrals.filter(sender__in=opted_in).values_list("sender").annotate(n=Count("pk")))
    received = dict(
        referrals.filter(receiver__in=opted_in).values_list("receiver").annotate(n=Count("pk"))
    )
    organisations = [
        {
            "id": organisation.pk,
            "name": organisation.name,
            "sent": suppress(sent.get(organisation.pk, 0)),
            "received": suppress(received.get(organisation.pk, 0)),
        }
        for organisation in opted_in.filter(pk__in=[*sent, *received]).order_by("name", "pk")
    ]
    enough = responded >= THRESHOLD
    return {
        "start": start,
        "end": end,
        "total": suppress(referrals.count()),
        "by_taxonomy": suppress_breakdown(taxonomy),
        "by_urgency": suppress_breakdown(_grouped(referrals, "urgency")),
        "by_outcome": suppress_breakdown(_grouped(referrals, "outcome")),
        "by_decline_reason": suppress_breakdown(_grouped(referrals, "decline_reason")),
        "responded": suppress(responded),
        "median_hours_to_first_response": (
            round(median_seconds / 3600, 1) if enough and median_seconds is not None else None
        ),
        "by_organisation": organisations,
    }
