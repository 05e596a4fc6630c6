"""What Schemathesis found refused with a 400 although the schema allowed it, or accepted
although the schema refused it (issue 12): a 400 means "does not match the schema", and the
schema states what the server checks."""

import pytest
import yaml
from django.conf import settings

from referrals.models import PersonalData, Referral, TimelineEntry, TimelineKind
from tests.api.helpers import assert_problem
from tests.referrals.conftest import current_etag

DOCUMENT = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]


def url(referral_id, suffix="") -> str:
    return f"/api/v1/referrals/{referral_id}{suffix}"


def parameter(path: str, method: str, name: str) -> dict:
    operation = DOCUMENT["paths"][path][method]
    return next(p["schema"] for p in operation["parameters"] if p["name"] == name)


class TestSafeContactIsReplacedWhole:
    def test_the_document_says_do_not_contact_is_required(self):
        operation = DOCUMENT["paths"]["/api/v1/referrals/{id}/safe-contact"]["patch"]
        assert operation["requestBody"]["required"] is True
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert SCHEMAS[ref.rsplit("/", 1)[-1]]["required"] == ["do_not_contact"]

    def test_an_empty_body_is_a_400_and_changes_nothing(self, create_referral, sender):
        rid = create_referral()["id"]
        response = sender.patch(
            url(rid, "/safe-contact"), {}, format="json", HTTP_IF_MATCH=current_etag(sender, rid)
        )
        body = assert_problem(response, 400)
        assert body["type"] == "/problems/validation-error"
        assert [e["pointer"] for e in body["errors"]] == ["/do_not_contact"]
        assert not TimelineEntry.objects.filter(
            referral_id=rid, kind=TimelineKind.SAFE_CONTACT_CHANGED
        ).exists()


class TestSelfServiceLanguage:
    @pytest.mark.parametrize("lang", ["", "xx", "EN"])
    def test_a_lang_the_schema_refuses_is_a_400_before_anything_changes(self, person, lang):
        rid = person.referral["id"]
        response = person.patch(
            f"/api/v1/self/safe-contact?lang={lang}", {"do_not_contact": True}, format="json"
        )
        assert assert_problem(response, 400)["type"] == "/problems/validation-error"
        assert not TimelineEntry.objects.filter(
            referral_id=rid, kind=TimelineKind.SAFE_CONTACT_CHANGED
        ).exists()

    def test_nor_does_a_withdrawal_happen_with_one(self, person):
        rid = person.referral["id"]
        response = person.post("/api/v1/self/withdraw?lang=xx")
        assert assert_problem(response, 400)["type"] == "/problems/validation-error"
        assert PersonalData.objects.filter(referral_id=rid).exists()

    def test_the_document_lists_the_languages(self):
        schema = parameter("/api/v1/self/safe-contact", "patch", "lang")
        assert sorted(schema["enum"]) == sorted(code for code, _ in settings.LANGUAGES)


class TestActionBodies:
    @pytest.mark.parametrize("body", ["[]", "null", "0", '""', "false", '["x"]'])
    def test_an_accept_with_a_body_that_is_no_object_is_a_400(
        self, create_referral, receiver, body
    ):
        rid = create_referral()["id"]
        response = receiver.generic(
            "POST",
            url(rid, "/accept"),
            body,
            content_type="application/json",
            HTTP_IF_MATCH=current_etag(receiver, rid),
        )
        problem = assert_problem(response, 400)
        assert problem["type"] == "/problems/validation-error"
        assert problem["errors"] == [{"pointer": "/", "detail": "Must be an object."}]
        assert Referral.objects.get(pk=rid).status == "requested"

    @pytest.mark.parametrize("body", ["[]", "null"])
    def test_a_revocation_with_one_deletes_nothing(self, create_referral, sender, body):
        rid = create_referral()["id"]
        response = sender.generic(
            "POST", url(rid, "/consent/revoke"), body, content_type="application/json"
        )
        assert assert_problem(response, 400)["type"] == "/problems/validation-error"
        assert PersonalData.objects.filter(referral_id=rid).exists()

    def test_no_body_or_an_empty_object_is_still_no_parameters(self, create_referral, receiver):
        first, second = create_referral()["id"], create_referral()["id"]
        etag = current_etag(receiver, first)
        response = receiver.post(url(first, "/receive"), HTTP_IF_MATCH=etag)
        assert response.status_code == 200, response.content
        etag = current_etag(receiver, second)
        response = receiver.post(url(second, "/receive"), {}, format="json", HTTP_IF_MATCH=etag)
        assert response.status_code == 200, response.content


class TestListBounds:
    """Bounded lists, so that no query the schema allows is over the request line's limit."""

    def test_the_document_bounds_the_repeated_filters(self):
        for name, bound in (("status", 9), ("urgency", 3), ("taxonomy", 20)):
            assert parameter("/api/v1/referrals", "get", name)["maxItems"] == bound

    def test_more_statuses_than_there_are_is_a_400(self, sender):
        statuses = "&".join(["status=requested"] * 10)
        response = sender.get(f"/api/v1/referrals?{statuses}")
        body = assert_problem(response, 400)
        assert [e["pointer"] for e in body["errors"]] == ["/status"]

    def test_a_status_repeated_within_the_bound_is_answered(self, sender):
        response = sender.get("/api/v1/referrals?status=requested&status=requested")
        assert response.status_code == 200, response.content
