"""The differencing attack on network statistics (issue 11, item 13), run from a partner's side.

Small cells are suppressed in each answer, but two answers for overlapping periods, or for the
same period before and after the data changed, can be subtracted: days 1–10 against days 1–11
gave day 11's count of every need and organisation. The attacker here asks everything the API
might answer (whole months, the default, and day windows as the old `start`/`end` allowed),
lets the data change (a referral's metadata deleted, a status changed), asks again, and then
subtracts every pair of answers whose periods overlap. A difference from 1 to 4 in any cell
singles out that many referrals: it must never appear."""

from datetime import UTC, date, datetime, timedelta
from itertools import combinations

import pytest
from django.utils import timezone

from referrals.models import Referral, TimelineEntry
from tests.api.audit.factories import make_referral

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/referrals"
BREAKDOWNS = ("by_taxonomy", "by_urgency", "by_outcome", "by_decline_reason")


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def this_month() -> date:
    return timezone.now().date().replace(day=1)


def at(month: date, day: int) -> datetime:
    return datetime(month.year, month.month, day, 12, tzinfo=UTC)


def last_day(month: date) -> date:
    return next_month(month) - timedelta(days=1)


def seed(sender, receiver, months) -> list[Referral]:
    """Per month: a steady 5 routine referrals a day for 12 days, and on day 11 two urgent
    shelter referrals, the small cell an attacker wants."""
    small = []
    for month in months:
        for day in range(1, 13):
            for _ in range(5):
                make_referral(sender, receiver, created=at(month, day), needs=["sti-testing"])
        small += [
            make_referral(
                sender, receiver, created=at(month, 11), urgency="urgent", needs=["shelter"]
            )
            for _ in range(2)
        ]
    return small


def candidate_queries(months) -> list[dict]:
    """Everything worth asking: the default, every month around the publishable range and far
    outside it, and the day windows the old API accepted."""
    queries = [{}]
    month = date(this_month().year - 2, this_month().month, 1)
    while month <= next_month(next_month(this_month())):
        queries.append({"month": f"{month:%Y-%m}"})
        month = next_month(month)
    queries += [{"month": "0001-01"}, {"month": "9999-12"}]
    for month in months:
        days = [month + timedelta(days=n) for n in range(last_day(month).day)]
        queries += [{"start": str(month), "end": str(day)} for day in days]
        queries += [{"start": str(day), "end": str(last_day(month))} for day in days[:14]]
    return queries


def period(answer: dict) -> tuple[date, date]:
    if "month" in answer:
        month = date.fromisoformat(answer["month"] + "-01")
        return month, last_day(month)
    return date.fromisoformat(answer["start"]), date.fromisoformat(answer["end"])


def cells(answer: dict) -> dict[str, int | str]:
    out = {"total": answer["total"], "responded": answer["responded"]}
    for name in BREAKDOWNS:
        out.update({f"{name}.{key}": value for key, value in answer[name].items()})
    for row in answer["by_organisation"]:
        out[f"org.{row['id']}.sent"] = row["sent"]
        out[f"org.{row['id']}.received"] = row["received"]
    return out


def exposures(first: dict, second: dict) -> list[str]:
    """Cells whose difference between two answers for overlapping periods is 1 to 4. A cell
    missing from a breakdown is a zero; a suppressed one ("<5") cannot be subtracted."""
    (a_start, a_end), (b_start, b_end) = period(first), period(second)
    if a_end < b_start or b_end < a_start:
        return []
    a, b = cells(first), cells(second)
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, 0), b.get(key, 0)
        if isinstance(x, int) and isinstance(y, int) and 0 < abs(x - y) < 5:
            found.append(f"{key}: {x} vs {y} ({period(first)} / {period(second)})")
    return found


def ask_all(client, queries) -> list[dict]:
    answers = []
    for query in queries:
        response = client.get(URL, query)
        assert response.status_code in (200, 400, 422), (query, response.status_code)
        if response.status_code == 200:
            answers.append(response.json())
    return answers


def test_no_two_answers_can_be_subtracted_to_single_anyone_out(client, make_organisation):
    sender, receiver = make_organisation("Sender"), make_organisation("Receiver")
    sender.stats_opt_in = True
    sender.save()
    last = previous_month(this_month())
    months = [previous_month(last), last]
    small = seed(sender, receiver, months)
    queries = candidate_queries(months)

    answers = ask_all(client, queries)
    # Then the data changes under the published figures: metadata deleted, a first response.
    Referral.objects.filter(pk__in=[small[0].pk, small[1].pk]).delete()
    TimelineEntry.objects.create(
        referral=small[2], kind="status_changed", from_status="received", to_status="accepted",
        at=small[2].created + timedelta(hours=3),
    )  # fmt: skip
    answers += ask_all(client, queries)

    assert len(answers) >= 2 * 12, "every month in the publishable range is answered, twice"
    found = [leak for x, y in combinations(answers, 2) for leak in exposures(x, y)]
    assert not found, f"{len(found)} small cells exposed by subtraction, e.g. {found[:5]}"


def test_only_months_are_answered(client):
    from referrals.stats import publishable_months

    first, last = publishable_months()
    allowed = ask_all(client, candidate_queries([last]))
    asked = {answer["month"] for answer in allowed}
    expected = set()
    month = first
    while month <= last:
        expected.add(f"{month:%Y-%m}")
        month = next_month(month)
    assert asked == expected
    assert all(set(answer) >= {"month", "computed"} and "start" not in answer for answer in allowed)
