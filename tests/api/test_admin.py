"""Stewardship admin: no personal field on any page, every action audited, sign-in throttled."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from oauth2_provider.models import get_access_token_model

from api.audit.models import AuditEntry
from api.webhooks.models import WebhookEndpoint
from partners.models import Application, Organisation
from tests.api.audit.factories import make_referral
from tests.conftest import issue_token

CANARY = "CANARY-7f3a9e1c-Ximena-Quispe"
SECRET_CANARY = "whsec_CANARYSECRET0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("steward", "s@example.org", "pw-Steward-1")


@pytest.fixture
def steward(superuser):
    browser = Client()
    browser.force_login(superuser)
    return browser


@pytest.fixture
def network(make_organisation, make_application):
    sender = make_organisation("Sender collective", kind="sex_worker_led")
    receiver = make_organisation("Receiver clinic")
    referral = make_referral(sender, receiver, canary=CANARY)
    make_referral(sender, receiver, canary=CANARY, status="completed")
    application = make_application(sender)
    issue_token(application)
    WebhookEndpoint.objects.create(
        organisation=sender, url="https://hooks.example.org/srn", secret=SECRET_CANARY
    )
    return {"sender": sender, "receiver": receiver, "referral": referral, "app": application}


def admin_urls():
    """Every page the admin offers a superuser: changelist, add, and for up to three objects
    of each model the change (or view), history and delete pages."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    for model, model_admin in admin.site._registry.items():
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        yield reverse(f"{name}_changelist")
        if model_admin.has_add_permission(request):
            yield reverse(f"{name}_add")
        for obj in model_admin.get_queryset(request)[:3]:
            yield reverse(f"{name}_change", args=[obj.pk])
            yield reverse(f"{name}_history", args=[obj.pk])
            if model_admin.has_delete_permission(request, obj):
                yield reverse(f"{name}_delete", args=[obj.pk])


def test_no_admin_page_shows_personal_data_or_secrets(steward, network):
    urls = list(admin_urls())
    assert any("/referrals/referral/" in url for url in urls)
    assert any(str(network["referral"].pk) in url for url in urls)
    for url in urls:
        response = steward.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert CANARY not in html, url
        assert SECRET_CANARY not in html, url
        assert network["app"].client_secret not in html, url
    assert len(urls) > 20
    # The referral page shows its metadata but no personal field or claim code.
    page = steward.get(
        reverse("admin:referrals_referral_change", args=[network["referral"].pk])
    ).content.decode()
    assert "Receiver clinic" in page
    assert network["referral"].claim_code not in page


def test_no_personal_model_is_registered():
    from referrals.models import Consent, PersonalData, ReferralKey, ReferralNote

    for model in (PersonalData, ReferralNote, ReferralKey, Consent):
        assert not admin.site.is_registered(model)


# --- filters: only the declared list_filter lookups (issue 11, item 5) ----------------------


@pytest.fixture
def hidden_fields(make_organisation):
    """A referral whose claim code and needs, and an endpoint whose secret, the admin never
    shows: the attack below tries to find them by filtering on them."""
    sender = make_organisation("Sender collective", kind="sex_worker_led")
    receiver = make_organisation("Receiver clinic")
    target = make_referral(sender, receiver, needs=["abortion-reproductive-care"])
    make_referral(sender, receiver)
    endpoint = WebhookEndpoint.objects.create(
        organisation=sender, url="https://hooks.example.org/hidden", secret=SECRET_CANARY
    )
    return {
        "claim_code": (target, target.claim_code, "ZZZZZZZZ"),
        # A PostgreSQL array literal, as the attack sent it.
        "needs__contains": (target, "{abortion-reproductive-care}", "{no-such-need}"),
        "secret__startswith": (endpoint, SECRET_CANARY[:10], "whsec_NOPE"),
    }


HIDDEN_LOOKUPS = [
    ("admin:referrals_referral_changelist", "claim_code"),
    ("admin:referrals_referral_changelist", "needs__contains"),
    ("admin:api_webhookendpoint_changelist", "secret__startswith"),
]


@pytest.mark.parametrize(("changelist", "lookup"), HIDDEN_LOOKUPS)
def test_steward_cannot_filter_on_hidden_fields(steward, hidden_fields, changelist, lookup):
    """A signed-in steward guessing a claim code, a need or a secret's prefix in the query
    string gets the same 400 whether the guess is right or wrong, and nothing of the object."""
    target, right, wrong = hidden_fields[lookup]
    url = reverse(changelist)
    hit = steward.get(url, {lookup: right})
    miss = steward.get(url, {lookup: wrong})
    for response in (hit, miss):
        assert response.status_code == 400, (lookup, response.status_code)
        assert response["Content-Type"] == "application/problem+json"
    assert hit.content == miss.content
    body = hit.content.decode()
    for leak in (str(target.pk), right, lookup):
        assert leak not in body
    # The search covers only the fields each admin declares, none of them hidden.
    searched = steward.get(url, {"q": right})
    assert searched.status_code == 200
    assert str(target.pk) not in searched.content.decode()
    # The declared filters still work, and list the object (its change link holds its id).
    declared = {"status__exact": "requested"} if "referral" in changelist else {"active__exact": 1}
    page = steward.get(url, declared)
    assert page.status_code == 200
    assert str(target.pk) in page.content.decode()


def test_every_model_admin_refuses_undeclared_lookups(steward, hidden_fields):
    """Every registered admin, including Django's own user and group admins: filtering on the
    primary key, which no list_filter declares, is refused."""
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = steward.get(url, {model._meta.pk.name: "1"})
        assert response.status_code == 400, (model, response.status_code)
        assert steward.get(url).status_code == 200, model


def run_action(steward, model, action, objects):
    info = model._meta.app_label, model._meta.model_name
    return steward.post(
        reverse("admin:{}_{}_changelist".format(*info)),
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects]},
        follow=True,
    )


def last_entry():
    return AuditEntry.objects.order_by("-sequence").first()


def test_verify_and_suspend_are_audited(steward, superuser, make_organisation):
    organisation = make_organisation()
    run_action(steward, Organisation, "verify", [organisation])
    organisation.refresh_from_db()
    assert organisation.verified
    entry = last_entry()
    assert (entry.action, entry.object_type, entry.object_id, entry.actor_user) == (
        "admin verify",
        "organisation",
        str(organisation.pk),
        superuser.pk,
    )
    run_action(steward, Organisation, "suspend", [organisation])
    organisation.refresh_from_db()
    assert organisation.suspended
    assert last_entry().action == "admin suspend"


def test_rotate_secret_shows_it_once_and_revokes_tokens(steward, network):
    application = network["app"]
    old_hash = application.client_secret
    response = run_action(steward, Application, "rotate_secret", [application])
    shown = [str(m) for m in response.context["messages"]]
    assert any(application.client_id in m and "shown only now" in m for m in shown)
    application.refresh_from_db()
    assert application.client_secret != old_hash
    assert not get_access_token_model().objects.filter(application=application).exists()
    assert last_entry().action == "admin rotate secret"
    # The secret is not shown again.
    again = steward.get(reverse("admin:partners_application_changelist")).content.decode()
    assert "shown only now" not in again


def test_revoke_tokens_is_audited(steward, network):
    run_action(steward, Application, "revoke_tokens", [network["app"]])
    assert not get_access_token_model().objects.filter(application=network["app"]).exists()
    assert last_entry().action == "admin revoke tokens"


def test_disable_webhook_endpoint(steward, network):
    endpoint = WebhookEndpoint.objects.get()
    run_action(steward, WebhookEndpoint, "disable", [endpoint])
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert last_entry().action == "admin disable"
    run_action(steward, WebhookEndpoint, "enable", [endpoint])
    endpoint.refresh_from_db()
    assert endpoint.active
    assert last_entry().action == "admin enable"


def test_change_and_bulk_delete_are_audited(steward, make_organisation):
    organisation = make_organisation()
    url = reverse("admin:partners_organisation_change", args=[organisation.pk])
    form = {
        "name": "Renamed",
        "kind": "clinic",
        "languages": "",
        "description": "",
        "website": "",
        "email": "",
        "phone": "",
        "region": "",
    }
    assert steward.post(url, form).status_code == 302
    entry = last_entry()
    assert (entry.action, entry.object_id) == ("admin change", str(organisation.pk))
    doomed = [make_organisation(), make_organisation()]
    steward.post(
        reverse("admin:partners_organisation_changelist"),
        {"action": "delete_selected", "_selected_action": [o.pk for o in doomed], "post": "yes"},
    )
    assert not Organisation.objects.filter(pk__in=[o.pk for o in doomed]).exists()
    deleted = set(
        AuditEntry.objects.filter(action="admin delete").values_list("object_id", flat=True)
    )
    assert deleted == {str(o.pk) for o in doomed}


def test_audit_trail_is_read_only_in_the_admin(steward, make_organisation):
    run_action(steward, Organisation, "verify", [make_organisation()])
    entry = last_entry()
    change = reverse("admin:api_auditentry_change", args=[entry.pk])
    page = steward.get(change)
    assert page.status_code == 200
    assert 'name="result"' not in page.content.decode()
    assert steward.post(change, {"result": "tampered"}).status_code == 403
    assert steward.get(reverse("admin:api_auditentry_add")).status_code == 403
    delete = reverse("admin:api_auditentry_delete", args=[entry.pk])
    assert steward.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).result == entry.result


def login(browser, password):
    return browser.post(
        reverse("admin:login"),
        {"username": "steward", "password": password, "next": "/admin/"},
    )


def test_sign_in_is_audited_and_throttled(superuser, settings):
    settings.ADMIN_LOGIN_FAILURES = "3/h"
    browser = Client()
    assert login(browser, "pw-Steward-1").status_code == 302
    entry = last_entry()
    assert (entry.action, entry.result, entry.actor_user) == ("admin login", "ok", superuser.pk)
    browser = Client()
    for _ in range(3):
        assert login(browser, "wrong").status_code == 200
    failed = AuditEntry.objects.filter(action="admin login", result="failed")
    assert failed.count() == 3
    assert {e.actor_user for e in failed} == {superuser.pk}
    # Now even the right password is refused without being checked.
    response = login(browser, "pw-Steward-1")
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in browser.session
    entry = last_entry()
    assert (entry.action, entry.result, entry.actor_user) == (
        "admin login",
        "throttled",
        superuser.pk,
    )
    # Another account is not affected.
    get_user_model().objects.create_superuser("other", "o@example.org", "pw-Other-1")
    assert (
        browser.post(
            reverse("admin:login"), {"username": "other", "password": "pw-Other-1"}
        ).status_code
        == 302
    )


def test_failed_sign_in_for_unknown_user_stores_no_username(db):
    login(Client(), "whatever")
    entry = last_entry()
    assert (entry.action, entry.result, entry.actor_user, entry.object_id) == (
        "admin login",
        "failed",
        None,
        "",
    )
    assert "steward" not in str(AuditEntry.objects.values_list().get())
