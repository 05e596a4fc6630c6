"""Network statistics for advocacy, from referral metadata only (so they survive the deletion
of personal data). Small cells are suppressed: a count from 1 to 4 is reported as "<5", and
when a breakdown would have exactly one suppressed cell, the next smallest is suppressed too,
so it cannot be recovered by subtraction.

Subtraction between answers is the other way in: days 1–10 against days 1–11 gave day 11's
count of every need and organisation, and the same period asked before and after a referral's
metadata was deleted gave that referral. So only calendar months (UTC) are published, once
they have ended; each is computed once, stored (`StatsSnapshot`) and never computed again.
Months do not overlap, and a published month does not change."""

from datetime import UTC, date, datetime, time

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from api.audit.models import StatsSnapshot
from api.errors import Unprocessable
from api.retention import days
from partners.models import Organisation
from referrals.models import Referral

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


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def _first_day(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def publishable_months(now: datetime | None = None) -> tuple[date, date]:
    """The first and last month that may still be computed. The last is the one before the
    current month. The first is the oldest month that began after the metadata retention
    horizon: its referrals were all closed after that horizon, so none has been deleted yet
    and its figures are complete. Older months are answered only if they were published."""
    now = now or timezone.now()
    horizon = now - days("RETENTION_METADATA_DAYS", 365)
    first = _first_day(horizon)
    if datetime.combine(first, time.min, tzinfo=UTC) < horizon:
        first = next_month(first)
    return first, previous_month(_first_day(now))


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


def _compute(month: date) -> dict:
    """Counts for referrals created in `month`, every small cell already suppressed, as JSON."""
    lower = datetime.combine(month, time.min, tzinfo=UTC)
    upper = datetime.combine(next_month(month), time.min, tzinfo=UTC)
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
            "id": str(organisation.pk),
            "name": organisation.name,
            "sent": suppress(sent.get(organisation.pk, 0)),
            "received": suppress(received.get(organisation.pk, 0)),
        }
        for organisation in opted_in.filter(pk__in=[*sent, *received]).order_by("name", "pk")
    ]
    enough = responded >= THRESHOLD
    return {
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


def _refused(detail: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"pointer": "/month", "detail": detail}])


def _snapshot(month: date) -> StatsSnapshot:
    """The stored figures of `month`, computing and storing them if this is the first ask.
    Two first asks at once may both compute; only one row is stored and both answer it."""
    snapshot = StatsSnapshot.objects.filter(month=month).first()
    if snapshot is not None:
        return snapshot
    first, last = publishable_months()
    if month > last:
        raise _refused(
            f"Statistics for a month are published once it has ended; the latest is {last:%Y-%m}."
        )
    if month < first:
        raise _refused(
            f"Statistics for {month:%Y-%m} were never published and can no longer be complete "
            f"(referral metadata is deleted a year after closing); the earliest month that can "
            f"be asked for is {first:%Y-%m}."
        )
    StatsSnapshot.objects.bulk_create(
        [StatsSnapshot(month=month, figures=_compute(month), computed=timezone.now())],
        ignore_conflicts=True,
    )
    return StatsSnapshot.objects.get(month=month)


def referral_stats(*, month: date | None = None) -> dict:
    """The published figures of one calendar month (by default the last one that ended). An
    organisation that has since withdrawn its opt-in is left out, whole: that reveals nothing
    the published month did not."""
    snapshot = _snapshot(month or publishable_months()[1])
    figures = dict(snapshot.figures)
    listed = [row["id"] for row in figures["by_organisation"]]
    names = dict(
        Organisation.objects.filter(pk__in=listed, stats_opt_in=True).values_list("pk", "name")
    )
    names = {str(pk): name for pk, name in names.items()}
    figures["by_organisation"] = [
        {**row, "name": names[row["id"]]}
        for row in figures["by_organisation"]
        if row["id"] in names
    ]
    return {"month": f"{snapshot.month:%Y-%m}", "computed": snapshot.computed, **figures}
