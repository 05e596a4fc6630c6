"""Network statistics: small-cell suppression, opt-in naming, survival of personal-data
deletion."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.audit.stats import suppress_breakdown
from api.retention import retention_run
from referrals.models import TimelineEntry
from tests.api.audit.factories import make_referral

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/referrals"


@pytest.fixture
def parties(make_organisation):
    return make_organisation("Sender"), make_organisation("Receiver")


def many(parties, count, **fields):
    return [make_referral(*parties, **fields) for _ in range(count)]


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


def test_small_cells_are_suppressed(client, parties):
    many(parties, 4, urgency="urgent", needs=["shelter"])
    many(parties, 6, urgency="routine", needs=["sti-testing"])
    many(parties, 7, urgency="soon", needs=["sti-testing", "legal-advice"])
    many(parties, 5, status="declined", decline_reason="no_capacity", urgency="soon")
    many(parties, 2, status="declined", decline_reason="out_of_area", urgency="soon")
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 24
    # "urgent" alone would be 24 - 6 - 14: the next smallest is suppressed with it.
    assert body["by_urgency"] == {"routine": "<5", "soon": 14, "urgent": "<5"}
    assert body["by_taxonomy"]["sti-testing"] == 13
    assert body["by_taxonomy"]["shelter"] == "<5"
    assert body["by_decline_reason"] == {"no_capacity": "<5", "out_of_area": "<5"}


def test_tiny_network_reveals_nothing(client, parties):
    referral = make_referral(*parties, status="completed", outcome="service_provided")
    responded(referral, 2)
    body = client.get(URL).json()
    assert body["total"] == "<5"
    assert body["by_outcome"] == {"service_provided": "<5"}
    assert body["responded"] == "<5"
    assert body["median_hours_to_first_response"] is None


def test_median_time_to_first_response(client, parties):
    for hours, referral in zip([1, 2, 3, 10, 20, 30], many(parties, 6), strict=True):
        responded(referral, hours, to_status="declined" if hours == 20 else "accepted")
        responded(referral, hours + 100)  # later changes do not count
    body = client.get(URL).json()
    assert body["responded"] == 6
    assert body["median_hours_to_first_response"] == 6.5


def test_organisations_named_only_when_opted_in(client, parties):
    sender = parties[0]
    many(parties, 6)
    assert client.get(URL).json()["by_organisation"] == []
    sender.stats_opt_in = True
    sender.save()
    body = client.get(URL).json()
    assert body["by_organisation"] == [
        {"id": str(sender.pk), "name": "Sender", "sent": 6, "received": 0}
    ]
    assert "Receiver" not in str(body)


def test_period_filter(client, parties):
    many(parties, 5, created=timezone.now() - timedelta(days=200))
    many(parties, 6)
    assert client.get(URL).json()["total"] == 6
    today = timezone.now().date()
    old = client.get(URL, {"start": str(today - timedelta(days=365)), "end": str(today)}).json()
    assert old["total"] == 11


def test_bad_query_is_a_problem_naming_the_field(client):
    response = client.get(URL, {"start": "2026-12-01", "end": "2026-11-01"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/start"
    unknown = client.get(URL, {"sender": "x"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["pointer"] == "/sender"


def test_figures_survive_personal_data_deletion(client, parties):
    closed = timezone.now() - timedelta(days=40)
    many(parties, 5, status="completed", outcome="service_provided", closed=closed)
    before = client.get(URL).json()
    assert retention_run("referral_personal_data") == 5
    assert client.get(URL).json() == before


def test_needs_referrals_read(api_client_for, organisation):
    assert api_client_for(organisation, scopes=["directory:read"]).get(URL).status_code == 403


@pytest.mark.parametrize("count", [5, 15])
def test_query_count_is_constant(client, parties, count, django_assert_num_queries):
    many(parties, count)
    with django_assert_num_queries(9):
        assert client.get(URL).status_code == 200
