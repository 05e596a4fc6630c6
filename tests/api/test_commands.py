"""The operator's commands: onboarding a partner (secret shown once, working at the token
endpoint), rotating a secret (old secret and old tokens stop working) and the demo seed (a
second run adds nothing)."""

import io
import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import get_access_token_model

from api.audit.models import AuditEntry
from partners.models import Application, Organisation
from tests.api.helpers import assert_problem, token_request

AccessToken = get_access_token_model()


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def onboard(*args) -> dict:
    return json.loads(run("onboard_partner", *args, "--json"))


def test_onboard_partner_prints_credentials_that_work(http):
    result = onboard("--name", "Sin Fronteras", "--kind", "immigrant_rights")
    assert set(result) == {"organisation_id", "client_id", "client_secret"}
    organisation = Organisation.objects.get(id=result["organisation_id"])
    assert organisation.name == "Sin Fronteras"
    assert organisation.kind == "immigrant_rights"
    application = Application.objects.get(client_id=result["client_id"])
    assert application.organisation == organisation
    assert application.client_secret != result["client_secret"]

    response = token_request(http, result["client_id"], result["client_secret"])
    assert response.status_code == 200
    # Without --scopes the application gets every partner scope.
    assert len(response.json()["scope"].split()) == 6
    me = http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
    assert me.json()["organisation"]["id"] == result["organisation_id"]


def test_onboard_partner_with_scopes(http):
    result = onboard(
        "--name", "Clínica", "--kind", "clinic", "--scopes", "directory:read", "referrals:read"
    )
    response = token_request(http, result["client_id"], result["client_secret"])
    assert sorted(response.json()["scope"].split()) == ["directory:read", "referrals:read"]


def test_onboard_partner_text_output_warns_the_secret_is_shown_once(db):
    out = run("onboard_partner", "--name", "Legal", "--kind", "legal_aid")
    assert "client_secret: " in out
    assert "only now" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "X"],
        ["--kind", "clinic"],
        ["--name", "X", "--kind", "nonsense"],
        ["--name", "X", "--kind", "clinic", "--scopes", "introspection"],
        ["--rotate-secret", "no-such-client"],
    ],
)
def test_onboard_partner_refuses_bad_arguments(db, args):
    with pytest.raises(CommandError):
        run("onboard_partner", *args)
    assert not Organisation.objects.exists()


def test_rotate_secret_issues_a_new_one_and_revokes_old_tokens(http):
    first = onboard("--name", "Red Umbrella", "--kind", "sex_worker_led")
    old_token = token_request(http, first["client_id"], first["client_secret"]).json()[
        "access_token"
    ]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {old_token}"}
    assert http.get("/api/v1/me", **auth).status_code == 200

    rotated = onboard("--rotate-secret", first["client_id"])
    assert rotated["client_id"] == first["client_id"]
    assert rotated["organisation_id"] == first["organisation_id"]
    assert rotated["client_secret"] != first["client_secret"]

    assert_problem(http.get("/api/v1/me", **auth), 401)
    response = token_request(http, first["client_id"], first["client_secret"])
    assert assert_problem(response, 401)["error"] == "invalid_client"
    assert token_request(http, first["client_id"], rotated["client_secret"]).status_code == 200


def test_rotate_secret_leaves_other_clients_alone(http):
    one = onboard("--name", "One", "--kind", "clinic")
    two = onboard("--name", "Two", "--kind", "clinic")
    token = token_request(http, two["client_id"], two["client_secret"]).json()["access_token"]
    onboard("--rotate-secret", one["client_id"])
    assert http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


# --- the organisation's profile at onboarding -------------------------------------------------


def test_onboard_partner_sets_the_profile(client):
    result = onboard(
        "--name", "Clínica Aberta Norte", "--kind", "clinic",
        "--description", "Free STI testing, no ID needed.", "--region", "Porto",
        "--languages", "pt-br", "en", "--community-led",
    )  # fmt: skip
    organisation = Organisation.objects.get(id=result["organisation_id"])
    assert organisation.description == "Free STI testing, no ID needed."
    assert organisation.region == "Porto"
    assert organisation.languages == ["pt-BR", "en"]  # normalised as the API normalises
    assert organisation.community_led is True
    assert organisation.verified is False
    shown = client.get(f"/api/v1/organisations/{organisation.id}").json()
    assert (shown["region"], shown["languages"], shown["community_led"]) == (
        "Porto",
        ["pt-BR", "en"],
        True,
    )


def test_onboard_partner_without_profile_options_leaves_the_profile_empty(db):
    organisation = Organisation.objects.get(
        id=onboard("--name", "Legal", "--kind", "legal_aid")["organisation_id"]
    )
    assert (organisation.description, organisation.region, organisation.languages) == ("", "", [])
    assert organisation.community_led is False


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["--languages", "pt", "not a tag"], "languages", ["pt", "not a tag"]),
        (["--languages", "0" * 40], "languages", ["0" * 40]),
        (["--region", "x" * 121], "region", "x" * 121),
        (["--region", "Lis\x00boa"], "region", "Lis\x00boa"),
        (["--description", "a\x00b"], "description", "a\x00b"),
    ],
)
def test_onboard_partner_refuses_what_the_api_refuses(client, args, field, value):
    """One rule: the API's own edit refuses the same value, with the same message."""
    problem = assert_problem(
        client.patch("/api/v1/organisations/me", {field: value}, format="json"), 400
    )
    organisations = Organisation.objects.count()
    with pytest.raises(CommandError) as refused:
        run("onboard_partner", "--name", "X", "--kind", "clinic", *args)
    assert str(refused.value).startswith("--" + field)
    for error in problem["errors"]:
        assert error["detail"] in str(refused.value)
    assert Organisation.objects.count() == organisations


# --- verification by a steward ---------------------------------------------------------------


def verify(*args) -> dict:
    return json.loads(run("verify_organisation", *args, "--json"))


def test_verify_organisation_marks_it_verified_for_partners_and_in_the_audit_trail(client):
    onboarded = onboard("--name", "Sin Fronteras", "--kind", "immigrant_rights")
    organisation_id = onboarded["organisation_id"]
    shown = client.get(f"/api/v1/organisations/{organisation_id}")
    assert shown.json()["verified"] is False

    assert verify(organisation_id) == {
        "organisation_id": organisation_id,
        "verified": True,
        "changed": True,
    }
    assert client.get(f"/api/v1/organisations/{organisation_id}").json()["verified"] is True
    entry = AuditEntry.objects.order_by("-sequence").first()
    assert (entry.action, entry.object_type, entry.object_id, entry.result) == (
        "steward verify",
        "organisation",
        organisation_id,
        "ok",
    )

    # A second run changes nothing and records nothing.
    entries = AuditEntry.objects.count()
    assert verify(organisation_id)["changed"] is False
    assert AuditEntry.objects.count() == entries

    assert verify(organisation_id, "--unverify")["verified"] is False
    assert client.get(f"/api/v1/organisations/{organisation_id}").json()["verified"] is False
    assert AuditEntry.objects.order_by("-sequence").first().action == "steward unverify"


def test_verify_organisation_text_output(db):
    organisation_id = onboard("--name", "Red Umbrella", "--kind", "sex_worker_led")[
        "organisation_id"
    ]
    assert run("verify_organisation", organisation_id).strip() == (
        f"Red Umbrella ({organisation_id}) is now verified."
    )
    assert run("verify_organisation", organisation_id).strip() == (
        f"Red Umbrella ({organisation_id}) is already verified."
    )


@pytest.mark.parametrize("organisation_id", ["00000000-0000-0000-0000-000000000000", "nonsense"])
def test_verify_organisation_refuses_an_unknown_id(db, organisation_id):
    with pytest.raises(CommandError, match="No organisation"):
        run("verify_organisation", organisation_id)


# --- the demo seed ---------------------------------------------------------------------------


def table_counts() -> dict[str, int]:
    """Every table of the project's apps and the toolkit's tokens, whoever added them."""
    labels = ("api", "partners", "referrals", "oauth2_provider")
    return {
        model._meta.label: model._default_manager.count()
        for label in labels
        for model in apps.get_app_config(label).get_models()
        if not model._meta.proxy
    }


@pytest.fixture
def var_dir(settings, tmp_path):
    """The seed keeps the demo secrets under VAR_DIR; never touch the developer's own."""
    settings.VAR_DIR = tmp_path
    return tmp_path


def test_seed_demo_is_idempotent(http, var_dir):
    first = json.loads(run("seed_demo", "--json"))
    after_first = table_counts()
    assert after_first["partners.Organisation"] >= 4
    assert after_first["partners.Application"] >= 4

    second = json.loads(run("seed_demo", "--json"))
    assert table_counts() == after_first
    assert second == first

    for client_id, entry in second.items():
        response = token_request(http, client_id, entry["client_secret"])
        assert response.status_code == 200, client_id
        me = http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
        assert me.json()["organisation"]["id"] == entry["organisation_id"]


def test_seed_demo_without_its_credentials_file_rotates_and_adds_nothing(http, var_dir):
    first = json.loads(run("seed_demo", "--json"))
    (var_dir / "demo-credentials.json").unlink()
    counts = table_counts()
    second = json.loads(run("seed_demo", "--json"))
    assert table_counts() == counts
    for client_id, entry in second.items():
        assert entry["client_secret"] != first[client_id]["client_secret"]
        assert token_request(http, client_id, entry["client_secret"]).status_code == 200
        assert token_request(http, client_id, first[client_id]["client_secret"]).status_code == 401
    assert oct((var_dir / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"


def test_seed_demo_prints_the_credentials(db, var_dir):
    out = run("seed_demo")
    credentials = json.loads((var_dir / "demo-credentials.json").read_text())
    for client_id, entry in credentials.items():
        assert client_id in out
        assert entry["client_secret"] in out
