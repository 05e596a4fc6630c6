"""Inbox and outbox: scoping, filters, cursor pagination and a query count that does not grow
with the page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.models import Service
from referrals.models import Referral
from referrals.selectors import SUMMARY_COLUMNS
from tests.referrals.conftest import act


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_inbox_and_outbox(create_referral, sender, receiver):
    first = create_referral()["id"]
    second = create_referral()["id"]
    assert ids(receiver.get("/api/v1/referrals?box=inbox")) == [second, first]
    assert ids(receiver.get("/api/v1/referrals")) == [second, first]
    assert ids(receiver.get("/api/v1/referrals?box=outbox")) == []
    assert ids(sender.get("/api/v1/referrals?box=outbox")) == [second, first]
    assert ids(sender.get("/api/v1/referrals?box=inbox")) == []


def test_items_carry_metadata_only(create_referral, receiver):
    create_referral()
    item = receiver.get("/api/v1/referrals").json()["results"][0]
    # The summary's columns of the referral row, which holds no personal data.
    assert set(item) == {column.removesuffix("_id") for column in SUMMARY_COLUMNS}


def test_filters(create_referral, receiver, service, receiver_org):
    routine = create_referral(urgency="routine", needs=["contraception"])["id"]
    urgent = create_referral(urgency="urgent")["id"]
    other_service = Service.objects.create(organisation=receiver_org, name="Counselling")
    elsewhere = create_referral(service=str(other_service.pk))["id"]
    act(receiver, urgent, "receive")

    def query(params):
        return ids(receiver.get("/api/v1/referrals?" + params))

    assert query("status=received") == [urgent]
    assert query("status=received&status=requested") == [elsewhere, urgent, routine]
    assert query("urgency=routine") == [routine]
    assert query("urgency=routine&urgency=urgent") == [urgent, routine]
    assert query(f"service={other_service.pk}") == [elsewhere]
    assert query("taxonomy=contraception") == [routine]
    assert query("taxonomy=contraception&taxonomy=sti-testing") == [elsewhere, urgent, routine]

    past = timezone.now() - timedelta(days=2)
    Referral.objects.filter(pk=routine).update(created=past, updated=past)
    cut = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert query(f"created_before={cut}") == [routine]
    assert set(query(f"created_after={cut}")) == {urgent, elsewhere}
    assert query(f"updated_before={cut}") == [routine]
    assert set(query(f"updated_after={cut}")) == {urgent, elsewhere}


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ("box=spam", "/box"),
        ("status=lost", "/status"),
        ("urgency=now", "/urgency"),
        ("service=nope", "/service"),
        ("created_after=yesterday", "/created_after"),
        ("sender=x", "/sender"),
        ("limit=1000", "/limit"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(params, pointer, receiver):
    response = receiver.get("/api/v1/referrals?" + params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"].startswith(pointer)


def test_cursor_pagination_newest_first(create_referral, receiver):
    created = [create_referral()["id"] for _ in range(7)]
    seen = []
    url = "/api/v1/referrals?limit=3"
    while url:
        page = receiver.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert seen == list(reversed(created))


def test_query_count_is_constant_in_page_size(create_referral, receiver, django_assert_num_queries):
    for _ in range(12):
        create_referral()
    # The token look-up (which counts the request against the rate limit) and the page
    # itself, whatever the page size.
    for limit in (2, 12):
        with django_assert_num_queries(2):
            response = receiver.get(f"/api/v1/referrals?limit={limit}&status=requested")
        assert len(response.json()["results"]) == limit


def test_inbox_summaries_built_in_sql_match_the_serializer(create_referral, sender_org, receiver):
    """The inbox page is rendered by PostgreSQL; it must say exactly what the documented
    serializer says, down to timestamps without microseconds and names that need escaping."""
    from rest_framework import serializers

    from referrals.api.serializers import ReferralSummarySerializer

    sender_org.name = 'Coletivo «Lua» "Nova" \\ 🌙'
    sender_org.save()
    first = create_referral()["id"]
    second = create_referral()["id"]
    act(receiver, first, "receive")
    on_the_second = timezone.now().replace(microsecond=0) + timedelta(days=2)
    closed = timezone.now().replace(microsecond=123456)
    Referral.objects.filter(pk=first).update(closed=closed, respond_by=on_the_second)
    page = receiver.get("/api/v1/referrals?box=inbox")
    assert page["Content-Type"] == "application/json"
    expected = [
        serializers.Serializer.to_representation(ReferralSummarySerializer(), referral)
        for referral in Referral.objects.select_related("sender", "receiver").order_by(
            "-created", "-id"
        )
    ]
    assert [item["id"] for item in expected] == [second, first]
    assert "." not in expected[1]["respond_by"] and "." in expected[1]["closed"]
    assert page.json()["results"] == expected


def test_fast_summary_rendering_matches_the_generic_one(create_referral, receiver):
    from rest_framework import serializers

    from referrals.api.serializers import ReferralSummarySerializer

    rid = create_referral()["id"]
    act(receiver, rid, "receive")
    referral = Referral.objects.select_related("sender", "receiver").get(pk=rid)
    referral.closed = timezone.now()
    generic = serializers.Serializer.to_representation(ReferralSummarySerializer(), referral)
    assert ReferralSummarySerializer(referral).data == generic
