"""Network statistics: small-cell suppression, opt-in naming, survival of personal-data
deletion, and publication by calendar month, once and for good (the differencing attack is in
test_stats_differencing.py)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from api.audit.models import StatsSnapshot
from api.retention import retention_run
from referrals.models import Referral, TimelineEntry
from referrals.stats import next_month, publishable_months, suppress_breakdown
from tests.api.audit.factories import make_referral
from tests.api.helpers import assert_problem

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/referrals"


def last_month() -> date:
    return publishable_months()[1]


def in_month(month: date, day: int = 10, hour: int = 12) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)


def ask(client, month: date | None = None, **params):
    if month is not None:
        params["month"] = f"{month:%Y-%m}"
    return client.get(URL, params)


@pytest.fixture
def parties(make_organisation):
    return make_organisation("Sender"), make_organisation("Receiver")


def many(parties, count, month=None, **fields):
    created = in_month(month or last_month())
    return [make_referral(*parties, created=created, **fields) for _ in range(count)]


def responded(referral, hours, to_status="accepted"):
    TimelineEntry.objects.create(
        referral=referral,
        kind="status_changed",
        from_status="received",
        to_status=to_status,
        at=referral.created + timedelta(hours=hours),
    )


def test_suppress_breakdown_rules():
    assert suppress_breakdown({"a": 0, "b": 5, "c": 12}) == {"a": 0, "b": 5, "c": 12}
    # One small cell alone would be recoverable from the total: the next smallest goes too.
    assert suppress_breakdown({"a": 3, "b": 7, "c": 40}) == {"a": "<5", "b": "<5", "c": 40}
    assert suppress_breakdown({"a": 3, "b": 1, "c": 40}) == {"a": "<5", "b": "<5", "c": 40}
    assert suppress_breakdown({}) == {}


def test_publishable_months_end_with_the_last_month_that_ended():
    now = datetime(2026, 1, 15, 9, tzinfo=UTC)
    first, last = publishable_months(now)
    assert last == date(2025, 12, 1)
    # The first month that began after the metadata retention horizon (365 days back).
    assert first == date(2025, 2, 1)
    assert publishable_months(datetime(2026, 3, 1, tzinfo=UTC)) == (
        date(2025, 3, 1),
        date(2026, 2, 1),
    )
    assert next_month(date(2025, 12, 1)) == date(2026, 1, 1)


def test_small_cells_are_suppressed(client, parties):
    many(parties, 4, urgency="urgent", needs=["shelter"])
    many(parties, 6, urgency="routine", needs=["sti-testing"])
    many(parties, 7, urgency="soon", needs=["sti-testing", "legal-advice"])
    many(parties, 5, status="declined", decline_reason="no_capacity", urgency="soon")
    many(parties, 2, status="declined", decline_reason="out_of_area", urgency="soon")
    response = ask(client, last_month())
    assert response.status_code == 200
    body = response.json()
    assert body["month"] == f"{last_month():%Y-%m}"
    assert body["total"] == 24
    # "urgent" alone would be 24 - 6 - 14: the next smallest is suppressed with it.
    assert body["by_urgency"] == {"routine": "<5", "soon": 14, "urgent": "<5"}
    assert body["by_taxonomy"]["sti-testing"] == 13
    assert body["by_taxonomy"]["shelter"] == "<5"
    assert body["by_decline_reason"] == {"no_capacity": "<5", "out_of_area": "<5"}


def test_the_default_is_the_last_month_that_ended(client, parties):
    many(parties, 6)
    many(parties, 7, month=next_month(last_month()))  # this month: not published yet
    body = client.get(URL).json()
    assert (body["month"], body["total"]) == (f"{last_month():%Y-%m}", 6)
    assert ask(client, last_month()).json() == body


def test_tiny_network_reveals_nothing(client, parties):
    (referral,) = many(parties, 1, status="completed", outcome="service_provided")
    responded(referral, 2)
    body = ask(client, last_month()).json()
    assert body["total"] == "<5"
    assert body["by_outcome"] == {"service_provided": "<5"}
    assert body["responded"] == "<5"
    assert body["median_hours_to_first_response"] is None


def test_median_time_to_first_response(client, parties):
    for hours, referral in zip([1, 2, 3, 10, 20, 30], many(parties, 6), strict=True):
        responded(referral, hours, to_status="declined" if hours == 20 else "accepted")
        responded(referral, hours + 100)  # later changes do not count
    body = ask(client, last_month()).json()
    assert body["responded"] == 6
    assert body["median_hours_to_first_response"] == 6.5


def test_organisations_named_only_while_opted_in(client, parties, make_organisation):
    sender, receiver = parties
    sender.stats_opt_in = True
    sender.save()
    many(parties, 6)
    body = ask(client, last_month()).json()
    assert body["by_organisation"] == [
        {"id": str(sender.pk), "name": "Sender", "sent": 6, "received": 0}
    ]
    assert "Receiver" not in str(body)
    # Opting in later does not reopen a published month...
    receiver.stats_opt_in = True
    receiver.save()
    assert ask(client, last_month()).json() == body
    # ...and withdrawing removes the organisation's row whole.
    sender.stats_opt_in = False
    sender.save()
    assert ask(client, last_month()).json() == {**body, "by_organisation": []}


def test_a_published_month_never_changes(client, parties):
    referrals = many(parties, 8, needs=["shelter"])
    first = ask(client, last_month()).json()
    assert first["total"] == 8
    # Metadata deleted, a status changed, a late row: none of it reaches a published month.
    Referral.objects.filter(pk__in=[r.pk for r in referrals[:3]]).delete()
    responded(referrals[5], 2)
    many(parties, 2, needs=["legal-advice"])
    assert ask(client, last_month()).json() == first
    assert StatsSnapshot.objects.count() == 1


def test_figures_survive_personal_data_deletion(client, parties):
    closed = timezone.now() - timedelta(days=40)
    many(parties, 5, status="completed", outcome="service_provided", closed=closed)
    before = ask(client, last_month()).json()
    assert retention_run("referral_personal_data") == 5
    assert ask(client, last_month()).json() == before


def month_string(month: date) -> str:
    return f"{month:%Y-%m}"


@pytest.mark.parametrize(
    ("params", "pointer", "says"),
    [
        ({"month": lambda: month_string(next_month(last_month()))}, "/month", "ended"),
        ({"month": lambda: month_string(next_month(next_month(last_month())))}, "/month", "ended"),
        ({"month": "9999-12"}, "/month", "ended"),
        ({"month": "0001-01"}, "/month", "never published"),
        ({"month": "2000-01"}, "/month", "never published"),
        ({"month": lambda: month_string(publishable_months()[0] - timedelta(days=1))},
         "/month", "never published"),
        ({"month": "0000-01"}, "/month", "YYYY-MM"),
        ({"month": "2026-13"}, "/month", "YYYY-MM"),
        ({"month": "2026-1"}, "/month", "YYYY-MM"),
        ({"month": "99999-01"}, "/month", "YYYY-MM"),
        ({"month": ""}, "/month", ""),
        ({"start": "2026-01-01", "end": "9999-12-31"}, "/end", "calendar month"),
        ({"start": "2026-01-01"}, "/start", "calendar month"),
        ({"end": "0001-01-03"}, "/end", "calendar month"),
        ({"sender": "x"}, "/sender", "not accepted"),
    ],
)  # fmt: skip
def test_anything_but_a_published_month_is_a_problem_never_a_500(client, params, pointer, says):
    params = {k: v() if callable(v) else v for k, v in params.items()}
    # A month that is well formed but not published (not ended yet, or past retention) is a
    # rule's refusal (422); anything the schema does not allow, a 400.
    status = 422 if says in ("ended", "never published") else 400
    body = assert_problem(client.get(URL, params), status)
    assert any(e["pointer"] == pointer and says in e["detail"] for e in body["errors"]), body
    assert not StatsSnapshot.objects.exists()


def test_a_published_month_stays_answerable_after_the_retention_horizon(client, parties, settings):
    many(parties, 6)
    published = ask(client, last_month()).json()
    settings.RETENTION_METADATA_DAYS = 1
    earlier = last_month() - timedelta(days=1)
    assert_problem(ask(client, date(earlier.year, earlier.month, 1)), 422)
    assert ask(client, last_month()).json() == published


def test_needs_referrals_read(api_client_for, organisation):
    assert api_client_for(organisation, scopes=["directory:read"]).get(URL).status_code == 403


@pytest.mark.parametrize("count", [5, 15])
def test_query_count_is_constant(client, parties, count, django_assert_num_queries):
    parties[0].stats_opt_in = True
    parties[0].save()
    many(parties, count)
    with django_assert_num_queries(14):
        assert ask(client, last_month()).status_code == 200
    with django_assert_num_queries(3):
        assert ask(client, last_month()).status_code == 200
