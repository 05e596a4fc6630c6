"""Retention jobs, with time travel done in the database (timestamps moved back), not by
freezing the clock: the jobs compare against now() like they do in production."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from api.audit.models import GENESIS_HASH, AuditAnchor, AuditEntry
from api.audit.selectors import audit_verify
from api.audit.services import entry_hash
from api.models import Event, IdempotencyKey
from api.retention import JOBS, retention_counts, retention_run
from api.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from referrals.models import PersonalData, Referral, ReferralKey, ReferralNote, TimelineEntry
from tests.api.audit.factories import make_referral
from tests.conftest import at_once, issue_token

pytestmark = pytest.mark.django_db


def ago(**delta):
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def parties(make_organisation):
    return make_organisation("Sender"), make_organisation("Receiver")


def closed_referral(parties, status="completed", **delta):
    return make_referral(*parties, canary="x", status=status, closed=ago(**delta))


def personal_rows(referral):
    return (
        PersonalData.objects.filter(referral=referral).count()
        + ReferralNote.objects.filter(referral=referral).count()
        + ReferralKey.objects.filter(referral=referral).count()
    )


@pytest.mark.parametrize("status", ["completed", "declined", "cancelled", "expired"])
def test_personal_data_destroyed_30_days_after_closing(parties, status):
    due = closed_referral(parties, status=status, days=31)
    recent = closed_referral(parties, status=status, days=29)
    open_old = make_referral(*parties, canary="x", status="accepted", created=ago(days=400))
    assert retention_run("referral_personal_data") == 1
    due.refresh_from_db()
    assert due.personal_data == "expired"
    assert personal_rows(due) == 0
    assert personal_rows(recent) == 5
    assert personal_rows(open_old) == 5
    # The metadata and the timeline stay.
    assert Referral.objects.filter(pk=due.pk).exists()
    assert TimelineEntry.objects.filter(referral=due, kind="consent_expired").count() == 1
    assert retention_run("referral_personal_data") == 0


def test_personal_data_period_is_a_setting(parties, settings):
    settings.RETENTION_PERSONAL_DATA_DAYS = 7
    referral = closed_referral(parties, days=8)
    assert retention_run("referral_personal_data") == 1
    assert personal_rows(referral) == 0


def test_metadata_deleted_after_365_days(parties):
    due = closed_referral(parties, days=366)
    kept = closed_referral(parties, days=364)
    assert retention_run("referral_metadata") == 1
    assert not Referral.objects.filter(pk=due.pk).exists()
    assert not TimelineEntry.objects.filter(referral_id=due.pk).exists()
    assert Referral.objects.filter(pk=kept.pk).exists()


def test_webhook_attempts_deleted_after_30_days(parties):
    endpoint = WebhookEndpoint.objects.create(
        organisation=parties[0], url="https://hooks.example.org/x", secret="s"
    )
    event = Event.objects.create(type="ping", organisation=parties[0], data={})
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, sequence=1)
    old, new = (
        WebhookDeliveryAttempt.objects.create(delivery=delivery, endpoint=endpoint, status_code=500)
        for _ in range(2)
    )
    WebhookDeliveryAttempt.objects.filter(pk=old.pk).update(created=ago(days=31))
    WebhookDeliveryAttempt.objects.filter(pk=new.pk).update(created=ago(days=29))
    assert retention_run("webhook_attempts") == 1
    assert list(WebhookDeliveryAttempt.objects.values_list("pk", flat=True)) == [new.pk]


def test_expired_tokens_deleted(make_organisation, make_application):
    application = make_application(make_organisation())
    issue_token(application)
    issue_token(application, expires_in=-1)
    assert retention_run("oauth_access_tokens") == 1
    assert get_access_token_model().objects.get().expires > timezone.now()


def test_idempotency_keys_deleted_after_their_window(make_organisation, make_application):
    application = make_application(make_organisation())
    old, new = (
        IdempotencyKey.objects.create(application=application, key=k, request_fingerprint="f")
        for k in ("a", "b")
    )
    IdempotencyKey.objects.filter(pk=old.pk).update(created=ago(hours=25))
    IdempotencyKey.objects.filter(pk=new.pk).update(created=ago(hours=23))
    assert retention_run("idempotency_keys") == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]


def append_at(time):
    """An entry as audit_record would have written it at `time`."""
    last = AuditEntry.objects.order_by("-sequence").first()
    entry = AuditEntry(
        sequence=last.sequence + 1 if last else 1,
        time=time,
        action="POST test",
        result="201",
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry


def test_audit_trail_prefix_pruned_after_its_period():
    for days in (800, 750, 10):
        append_at(ago(days=days))
    assert retention_run("audit_trail") == 2
    assert AuditAnchor.objects.get().pruned_through == 2
    # The purge itself is the newest entry, and the chain still verifies.
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [
        "purge audit_trail",
        "POST test",
    ]
    assert audit_verify() is None


def test_purges_are_audited(parties):
    closed_referral(parties, days=31)
    retention_run("referral_personal_data")
    entry = AuditEntry.objects.order_by("-sequence").first()
    assert (entry.action, entry.result) == ("purge referral_personal_data", "removed 1")


def test_nothing_removed_means_nothing_audited():
    retention_run("webhook_attempts")
    assert not AuditEntry.objects.exists()


def test_dry_run_prints_counts_and_removes_nothing(parties, capsys):
    referral = closed_referral(parties, days=400)
    call_command("purge", dry_run=True)
    lines = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert set(lines) == set(JOBS)
    assert lines["referral_personal_data"] == "1"
    assert lines["referral_metadata"] == "1"
    assert lines["webhook_attempts"] == "0"
    assert personal_rows(referral) == 5
    assert retention_counts()["referral_metadata"] == 1


def test_purge_command_runs_every_job(parties, capsys):
    referral = closed_referral(parties, days=400)
    call_command("purge")
    out = capsys.readouterr().out
    assert "referral_personal_data: removed 1" in out
    assert "referral_metadata: removed 1" in out
    assert not Referral.objects.filter(pk=referral.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("job", ["referral_personal_data", "referral_metadata"])
def test_two_runs_at_once_share_the_work(parties, job):
    due = [closed_referral(parties, days=400) for _ in range(30)]
    results = at_once(lambda: retention_run(job, batch=4), 2)
    assert sum(results) == len(due)
    if job == "referral_personal_data":
        # Each referral was shredded exactly once.
        assert TimelineEntry.objects.filter(kind="consent_expired").count() == len(due)
        assert not PersonalData.objects.exists()
    else:
        assert not Referral.objects.exists()
    assert retention_run(job) == 0
    assert audit_verify() is None


def test_expired_admin_sessions_deleted():
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    for age in (-1, 1):
        store = SessionStore()
        store["x"] = 1
        store.save()
        Session.objects.filter(pk=store.session_key).update(expire_date=ago(days=age))
    assert retention_run("admin_sessions") == 1
    assert Session.objects.get().expire_date > timezone.now()


def test_delivered_outbox_events_deleted_after_30_days(parties):
    endpoint = WebhookEndpoint.objects.create(
        organisation=parties[0], url="https://hooks.example.org/x", secret="s"
    )
    events = [
        Event.objects.create(type="ping", organisation=parties[0], data={}, dispatched_at=ago())
        for _ in range(4)
    ]
    done, waiting, recent, undispatched = events
    for event, status in ((done, "succeeded"), (waiting, "pending"), (recent, "succeeded")):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, sequence=events.index(event) + 1, status=status
        )
    Event.objects.filter(pk__in=[done.pk, waiting.pk]).update(created=ago(days=31))
    Event.objects.filter(pk=undispatched.pk).update(created=ago(days=31), dispatched_at=None)
    assert retention_run("outbox_events") == 1
    assert not Event.objects.filter(pk=done.pk).exists()
    assert not WebhookDelivery.objects.filter(event_id=done.pk).exists()
    assert Event.objects.count() == 3


def test_rate_limit_windows_older_than_a_day_deleted():
    from api.models import RateLimitWindow

    now = int(timezone.now().timestamp())
    RateLimitWindow.objects.create(key="token:made-up", window_start=now - 2 * 86400, count=9)
    RateLimitWindow.objects.create(key="app:1", window_start=now - 60, count=3)
    assert retention_run("rate_limit_windows") == 1
    assert list(RateLimitWindow.objects.values_list("key", flat=True)) == ["app:1"]
