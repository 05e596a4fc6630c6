"""Partnerships: the lifecycle, who may take each step, visibility, events and bad input."""

import json

import pytest
import yaml
from django.conf import settings

from api.models import Event
from partners.models import Partnership
from partners.selectors import active_partner_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(make_organisation):
    return make_organisation("Red Umbrella Collective", kind="sex_worker_led")


@pytest.fixture
def sides(client, api_client_for, other):
    """Each party's client: `client`'s organisation proposes to `other`."""
    return {"proposer": client, "partner": api_client_for(other)}


def propose(client, partner, **extra):
    body = {
        "partner_id": str(partner.pk),
        "data_categories": ["contact", "health"],
        "purposes": ["Referral for sexual health care"],
        **extra,
    }
    return client.post("/api/v1/partnerships", body, format="json")


def act(client, partnership_id, action):
    return client.post(f"/api/v1/partnerships/{partnership_id}/{action}")


def test_full_lifecycle(client, sides, organisation, other):
    response = propose(client, other)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "proposed"
    assert body["data_categories"] == ["contact", "health"]
    pid = body["id"]
    assert active_partner_ids(organisation.pk) == []

    assert act(sides["partner"], pid, "accept").json()["status"] == "active"
    assert active_partner_ids(organisation.pk) == [other.pk]
    assert active_partner_ids(other.pk) == [organisation.pk]

    assert act(client, pid, "suspend").json()["status"] == "suspended"
    assert active_partner_ids(organisation.pk) == []
    assert act(client, pid, "resume").json()["status"] == "active"
    assert act(sides["partner"], pid, "end").json()["status"] == "ended"
    assert active_partner_ids(organisation.pk) == []


def test_both_sides_list_it_and_nobody_else_sees_it(
    client, sides, api_client_for, make_organisation, other
):
    pid = propose(client, other).json()["id"]
    for side in sides.values():
        assert [p["id"] for p in side.get("/api/v1/partnerships").json()["results"]] == [pid]
    stranger = api_client_for(make_organisation("Stranger"))
    assert stranger.get("/api/v1/partnerships").json()["results"] == []
    hidden = stranger.get(f"/api/v1/partnerships/{pid}")
    unknown = stranger.get("/api/v1/partnerships/00000000-0000-0000-0000-000000000000")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == unknown.json()["detail"]
    assert act(stranger, pid, "accept").status_code == 404
    assert Partnership.objects.get().status == "proposed"


def test_list_filters_by_status(client, other, make_organisation, make_partnership, organisation):
    make_partnership(organisation, make_organisation("A"), status="ended")
    pid = propose(client, other).json()["id"]
    response = client.get("/api/v1/partnerships", {"status": "proposed"})
    assert [p["id"] for p in response.json()["results"]] == [pid]


# A step only the other party may take: 409 `wrong-party`, never 403 (the token holds every
# scope; the caller's part in the partnership refuses it).
WRONG_PARTY = "wrong-party"
# Who may take each step: (action, from status, actor) -> allowed?
WHO_MAY_ACT = [
    ("accept", "proposed", "proposer", WRONG_PARTY),
    ("accept", "proposed", "partner", 200),
    ("decline", "proposed", "proposer", WRONG_PARTY),
    ("decline", "proposed", "partner", 200),
    ("suspend", "active", "proposer", 200),
    ("suspend", "active", "partner", 200),
    ("end", "proposed", "proposer", 200),
    ("end", "active", "partner", 200),
    ("end", "suspended", "proposer", 200),
]
# Steps the status does not allow, whoever takes them: 409 `conflict`.
STATUS_REFUSES = [
    ("accept", "active", "partner"),
    ("decline", "active", "partner"),
    ("suspend", "proposed", "partner"),
    ("resume", "active", "proposer"),
    ("end", "ended", "proposer"),
    ("end", "declined", "partner"),
]


@pytest.mark.parametrize(
    ("action", "status", "actor", "expected"),
    [*WHO_MAY_ACT, *[(*step, 409) for step in STATUS_REFUSES]],
)
def test_who_may_take_each_step(
    sides, organisation, other, make_partnership, action, status, actor, expected
):
    partnership = make_partnership(organisation, other, status=status)
    response = act(sides[actor], partnership.pk, action)
    assert response.status_code == (409 if expected == WRONG_PARTY else expected), response.content
    partnership.refresh_from_db()
    if expected != 200:
        assert response["Content-Type"] == "application/problem+json"
        assert partnership.status == status
    if expected == WRONG_PARTY:
        assert response.json()["type"] == "/problems/wrong-party"
    if expected == 409:
        assert response.json()["type"] == "/problems/conflict"
        article = "An" if status[0] in "aeiou" else "A"
        assert response.json()["detail"].startswith(f"{article} {status} partnership ")


@pytest.mark.parametrize(
    ("suspender", "resumer", "expected"),
    [
        ("proposer", "proposer", 200),
        ("proposer", "partner", 409),
        ("partner", "partner", 200),
        ("partner", "proposer", 409),
    ],
)
def test_only_the_suspending_side_may_resume(
    sides, organisation, other, make_partnership, suspender, resumer, expected
):
    partnership = make_partnership(organisation, other)
    assert act(sides[suspender], partnership.pk, "suspend").status_code == 200
    response = act(sides[resumer], partnership.pk, "resume")
    assert response.status_code == expected, response.content
    if expected == 409:
        assert response.json()["type"] == "/problems/wrong-party"
        partnership.refresh_from_db()
        assert partnership.status == "suspended"


def test_every_change_is_announced_to_both_sides(client, sides, organisation, other):
    pid = propose(client, other).json()["id"]
    act(sides["partner"], pid, "accept")
    events = Event.objects.filter(type="partnership.changed").order_by("created")
    assert [(e.organisation_id, e.data["status"]) for e in events] == [
        (organisation.pk, "proposed"),
        (other.pk, "proposed"),
        (organisation.pk, "active"),
        (other.pk, "active"),
    ]
    assert {e.data["partnership_id"] for e in events} == {pid}


def test_proposing_to_oneself_is_422(client, organisation):
    response = propose(client, organisation)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/partner_id"
    assert not Partnership.objects.exists()


def test_proposing_when_one_is_pending_is_409(client, sides, organisation, other):
    assert propose(client, other).status_code == 201
    again = propose(client, other)
    reverse = propose(sides["partner"], organisation)
    assert again.status_code == reverse.status_code == 409
    assert again.json()["errors"][0]["pointer"] == "/partner_id"
    assert Partnership.objects.count() == 1
    assert Event.objects.filter(type="partnership.changed").count() == 2


def test_a_new_proposal_after_the_old_one_ended(client, other, organisation, make_partnership):
    make_partnership(organisation, other, status="ended")
    assert propose(client, other).status_code == 201


@pytest.mark.parametrize(
    ("change", "pointer", "status"),
    [
        # A well-formed id that names no organisation: the schema allows it, a rule refuses it.
        ({"partner_id": "00000000-0000-0000-0000-000000000000"}, "/partner_id", 422),
        ({"partner_id": "nope"}, "/partner_id", 400),
        ({"data_categories": ["immigration_status"]}, "/data_categories/0", 400),
        ({"data_categories": []}, "/data_categories", 400),
        ({"purposes": []}, "/purposes", 400),
        ({"status": "active"}, "/status", 400),
    ],
)
def test_bad_proposals_name_the_field(client, other, change, pointer, status):
    response = propose(client, other, **change)
    assert response.status_code == status
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert not Partnership.objects.exists()


def test_actions_need_directory_write(api_client_for, organisation, other, make_partnership):
    partnership = make_partnership(organisation, other, status="proposed")
    reader = api_client_for(other, scopes=["directory:read"])
    response = act(reader, partnership.pk, "accept")
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["directory:write"]


def test_a_partnerships_parties_have_their_own_schema():
    """Not a service's organisation: the document names them for what they are."""
    document = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
    properties = document["components"]["schemas"]["Partnership"]["properties"]
    for side in ("proposer", "partner"):
        refs = json.dumps(properties[side])
        assert "#/components/schemas/PartnershipParty" in refs
        assert "ServiceOrganisation" not in refs
