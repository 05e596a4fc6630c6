"""Epoch keys: the job moves live data keys to a new epoch and destroys the old epoch key, so a
destroyed referral's data key opens with nothing the server holds any more, from any copy of the
database; the API keeps working throughout; every process drops a destroyed epoch key within its
cache time; ciphertexts stay out of planner statistics. The attack on a real copy of a
PostgreSQL data directory is in test_seizure.py."""

import importlib
import io
import os
import threading
import time
import uuid
import warnings
from datetime import timedelta
from types import SimpleNamespace

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, migrations, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.celery import app
from referrals import keyring
from referrals.models import KeyEpoch, PersonalData, Referral, ReferralKey
from referrals.selectors import personal_data_of
from referrals.services import EpochRotation, key_epochs_rotate
from tests.conftest import database_url
from tests.referrals import seizure
from tests.servers import run_python

ROOT = settings.BASE_DIR
CANARY = "canary-" + uuid.uuid4().hex


def backup(referral_id) -> tuple[set[bytes], set[bytes]]:
    """What a copy of the database holds for a referral: its wrapped data key, its ciphertexts."""
    wrapped = {
        bytes(w)
        for w in ReferralKey.objects.filter(pk=referral_id).values_list("wrapped", flat=True)
    }
    ciphertexts = {
        bytes(c)
        for c in PersonalData.objects.filter(referral_id=referral_id).values_list(
            "ciphertext", flat=True
        )
    }
    return wrapped, ciphertexts


def attack(referral_id, copy, directory) -> str:
    """Everything the copy's key and ciphertexts decrypt to, with every key the server holds."""
    keys = seizure.server_keys(settings.REFERRAL_KEKS, directory)
    return "\n".join(seizure.recover(uuid.UUID(str(referral_id)), *copy, keys))


def test_the_job_moves_live_keys_to_a_new_epoch_then_destroys_the_old_one(
    create_referral, receiver, referral_keyring
):
    ids = [create_referral()["id"] for _ in range(3)]
    (first,) = keyring.epochs()
    wrapped = dict(ReferralKey.objects.values_list("pk", "wrapped"))
    ciphertexts = {bytes(c) for c in PersonalData.objects.values_list("ciphertext", flat=True)}
    timing = keyring.schedule()
    now = timezone.now()

    assert key_epochs_rotate(now=now) == EpochRotation(started=None, moved=0, destroyed=[])
    due = now + timing.rotate_after
    # A successor first; the old epoch stays until every process has moved on (the grace).
    assert key_epochs_rotate(now=due) == EpochRotation(started=first + 1, moved=0, destroyed=[])
    assert keyring.epochs() == [first, first + 1]
    assert KeyEpoch.objects.get(pk=first).retired is None

    done = key_epochs_rotate(now=due + timing.grace)

    assert done == EpochRotation(started=None, moved=3, destroyed=[first])
    assert sorted(path.name for path in referral_keyring.iterdir()) == [f"epoch-{first + 1}.key"]
    old = KeyEpoch.objects.get(pk=first)
    assert old.retired == old.destroyed == due + timing.grace
    assert first not in keyring.cached()
    for key in ReferralKey.objects.all():
        assert (key.epoch, key.kid) == (first + 1, "")
        assert bytes(key.wrapped) != bytes(wrapped[key.pk])
    assert {bytes(c) for c in PersonalData.objects.values_list("ciphertext", flat=True)} == (
        ciphertexts
    )
    for rid in ids:
        assert receiver.get(f"/api/v1/referrals/{rid}").json()["reason"]
    assert key_epochs_rotate(now=due + timing.grace) == EpochRotation(None, 0, [])


def test_a_copy_of_a_revoked_referral_opens_with_nothing_the_server_holds_after_the_job(
    create_referral, sender, receiver, referral_keyring
):
    revoked = create_referral(reason=CANARY)["id"]
    live = create_referral()["id"]
    copy = backup(revoked)
    # The attack works while the epoch key exists, and revocation alone does not stop it: the
    # copy keeps the wrapped data key that revocation deleted.
    assert CANARY in attack(revoked, copy, referral_keyring)
    assert sender.post(f"/api/v1/referrals/{revoked}/consent/revoke").status_code == 200
    assert ReferralKey.objects.filter(pk=revoked).count() == 0
    assert CANARY in attack(revoked, copy, referral_keyring)

    out = io.StringIO()
    call_command("rotate_key_epochs", "--now", stdout=out)

    assert "destroyed epoch keys: 1." in out.getvalue()
    assert attack(revoked, copy, referral_keyring) == ""
    assert receiver.get(f"/api/v1/referrals/{live}").json()["reason"]
    assert receiver.get(f"/api/v1/referrals/{revoked}").status_code == 410


def test_the_job_destroys_a_key_file_restored_by_mistake_or_unknown(
    create_referral, receiver, referral_keyring
):
    rid = create_referral()["id"]
    (first,) = keyring.epochs()
    saved = (referral_keyring / f"epoch-{first}.key").read_bytes()
    assert key_epochs_rotate(force=True).destroyed == [first]
    # A backup of the keyring put back, and a file the database never knew.
    (referral_keyring / f"epoch-{first}.key").write_bytes(saved)
    (referral_keyring / "epoch-99.key").write_bytes(saved)

    assert key_epochs_rotate().destroyed == [first, 99]
    assert keyring.epochs() == [first + 1]
    assert receiver.get(f"/api/v1/referrals/{rid}").json()["reason"]


def test_rotate_key_epochs_reports_what_it_did(create_referral):
    create_referral()
    out = io.StringIO()
    call_command("rotate_key_epochs", stdout=out)
    call_command("rotate_key_epochs", "--now", stdout=out)
    assert out.getvalue().splitlines() == [
        "no new epoch; moved 0 data keys; destroyed epoch keys: none.",
        "started epoch 2; moved 1 data keys; destroyed epoch keys: 1.",
    ]


def test_a_read_that_raced_the_job_reads_the_key_again(create_referral):
    rid = create_referral(reason=CANARY)["id"]
    referral = Referral.objects.select_related("consent", "key", "partnership").get(pk=rid)
    key_epochs_rotate(force=True)
    assert referral.key.epoch not in keyring.epochs()
    assert personal_data_of(referral, organisation=referral.sender)["reason"] == CANARY


def test_create_and_read_cost_no_extra_statement(create_referral, sender, receiver, payload):
    """Once an epoch exists, creating and reading a referral use the keyring only in memory: the
    one statement that names an epoch is the insert that would have run anyway."""
    rid = create_referral()["id"]
    with CaptureQueriesContext(connection) as created:
        assert sender.post("/api/v1/referrals", payload(), format="json").status_code == 201
    with CaptureQueriesContext(connection) as read:
        assert receiver.get(f"/api/v1/referrals/{rid}").status_code == 200

    def about_epochs(queries) -> list[str]:
        return [q["sql"] for q in queries if "keyepoch" in q["sql"] or "key-epochs" in q["sql"]]

    (insert,) = about_epochs(created.captured_queries)
    assert "INSERT INTO referrals_referral " in insert
    assert about_epochs(read.captured_queries) == []


@pytest.mark.django_db(transaction=True)
def test_a_process_whose_epoch_another_process_retired_creates_under_the_newest(
    create_referral, receiver
):
    first_id = create_referral()["id"]
    (first,) = keyring.epochs()
    assert keyring.newest() == first

    result = run_python(
        "manage.py",
        "rotate_key_epochs",
        "--now",
        env={**os.environ, "DATABASE_URL": database_url()},
    )

    assert result.returncode == 0, result.stderr
    assert f"destroyed epoch keys: {first}." in result.stdout
    # This process still believes `first` is the newest epoch (its cache is minutes long): the
    # insert refuses it, and the create retries under the newest.
    assert keyring.newest() == first
    second_id = create_referral()["id"]
    assert ReferralKey.objects.get(pk=second_id).epoch == first + 1
    for rid in (first_id, second_id):
        assert receiver.get(f"/api/v1/referrals/{rid}").json()["reason"]


def test_a_process_drops_an_epoch_key_it_holds_within_the_cache_time_even_when_idle(
    settings, referral_keyring
):
    settings.REFERRAL_SHRED_WITHIN = timedelta(seconds=48)
    cache = keyring.schedule().cache.total_seconds()
    assert cache == 0.5
    keyring.create(1)
    rid = uuid.uuid4()
    wrapped = keyring.wrap(1, rid, b"k" * 32)
    assert keyring.cached() == {1}
    # Another process's job destroys the epoch key; nothing tells this one.
    (referral_keyring / "epoch-1.key").unlink()

    time.sleep(cache + 0.5)

    assert keyring.cached() == set()
    with pytest.raises(keyring.EpochDestroyed):
        keyring.unwrap(rid, SimpleNamespace(epoch=1, kid="", wrapped=wrapped))


def test_a_forked_child_starts_without_its_parents_epoch_keys(referral_keyring):
    keyring.create(1)
    assert keyring.cached() == {1}
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork beside the sweeper thread
        child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(write, repr(sorted(keyring.cached())).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = pipe.read()
    os.waitpid(child, 0)
    assert seen == "[]"
    assert keyring.cached() == {1}


def _in_thread(target, results: dict, name: str) -> threading.Thread:
    def run():
        try:
            results[name] = target()
        except BaseException as error:  # reported by the test, not lost in the thread
            results[name] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_the_job_waits_for_a_create_that_read_the_old_epoch_as_live(
    create_referral, sender, receiver, payload
):
    create_referral()
    (first,) = keyring.epochs()
    inserted, release, results = threading.Event(), threading.Event(), {}

    def create_and_hold():
        with transaction.atomic():
            response = sender.post("/api/v1/referrals", payload(reason=CANARY), format="json")
            inserted.set()
            release.wait(30)
        return response.json()["id"]

    holder = _in_thread(create_and_hold, results, "created")
    assert inserted.wait(30)
    job = _in_thread(lambda: key_epochs_rotate(force=True), results, "rotation")
    job.join(2)
    assert job.is_alive(), "the job must wait for the open insert under the retired epoch"
    release.set()
    holder.join(30)
    job.join(30)

    assert results["rotation"] == EpochRotation(started=first + 1, moved=2, destroyed=[first])
    assert ReferralKey.objects.get(pk=results["created"]).epoch == first + 1
    assert receiver.get(f"/api/v1/referrals/{results['created']}").json()["reason"] == CANARY


@pytest.mark.django_db(transaction=True)
def test_a_create_blocked_by_the_job_then_finds_its_epoch_retired(
    create_referral, sender, receiver, payload
):
    """The job's SHARE lock orders inserts: one that waited for it reads the epoch's state only
    once it runs, so it cannot store a data key under an epoch retired in the meantime."""
    create_referral()
    (first,) = keyring.epochs()
    results = {}
    with psycopg.connect(database_url(), autocommit=True) as job:
        # Another process's job: a newer epoch, the old one retired, the key table locked.
        job.execute("INSERT INTO referrals_keyepoch (id, created) VALUES (%s, now())", [first + 1])
        job.execute("UPDATE referrals_keyepoch SET retired = now() WHERE id = %s", [first])
        with job.transaction():
            job.execute("LOCK TABLE referrals_referralkey IN SHARE MODE")
            create = _in_thread(
                lambda: sender.post("/api/v1/referrals", payload(), format="json"),
                results,
                "response",
            )
            deadline = time.monotonic() + 30
            while not job.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = 'referrals_referralkey'::regclass"
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the create never waited for the lock"
                time.sleep(0.05)
        create.join(30)

    assert results["response"].status_code == 201, results["response"].content
    key = ReferralKey.objects.get(pk=results["response"].json()["id"])
    assert key.epoch not in (first, first + 1)
    assert KeyEpoch.objects.get(pk=key.epoch).retired is None
    assert receiver.get(f"/api/v1/referrals/{key.pk}").json()["reason"]


# BinaryFields that hold no ciphertext: an HSDS import's uploaded file is public directory data.
NOT_CIPHERTEXT = {("partners_directoryimportchunk", "data")}


def encrypted_columns() -> set[tuple[str, str]]:
    """Every BinaryField of the project's models but those named above: a ciphertext or a
    wrapped key, unless a reviewer listed it there."""
    return {
        (model._meta.db_table, field.column)
        for label in ("api", "partners", "referrals")
        for model in apps.get_app_config(label).get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.BinaryField)
    } - NOT_CIPHERTEXT


def statistics(table: str, column: str) -> tuple[int, int]:
    """(the column's statistics target, how many statistics rows PostgreSQL keeps for it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
            [table, column],
        )
        target = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = %s", [table, column]
        )
        return target, cursor.fetchone()[0]


def test_ciphertexts_are_kept_out_of_planner_statistics(create_referral, sender):
    migration = importlib.import_module("referrals.migrations.0002_key_epochs")
    assert set(migration.ENCRYPTED_COLUMNS) == encrypted_columns()
    for _ in range(3):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/notes", {"text": CANARY}, format="json")
    tables = {table for table, _ in migration.ENCRYPTED_COLUMNS}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(f'"{table}"' for table in sorted(tables)))
    for table, column in migration.ENCRYPTED_COLUMNS:
        assert statistics(table, column) == (0, 0), (table, column)
    assert statistics("referrals_personaldata", "field")[1] == 1, "ANALYZE did run"


def test_the_migration_drops_statistics_gathered_before_it(create_referral, sender):
    migration = importlib.import_module("referrals.migrations.0002_key_epochs")
    (operation,) = [
        op for op in migration.Migration.operations if isinstance(op, migrations.RunSQL)
    ]
    for _ in range(3):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/notes", {"text": CANARY}, format="json")
    tables = ", ".join(sorted({f'"{table}"' for table, _ in migration.ENCRYPTED_COLUMNS}))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending FK checks
        for statement in operation.reverse_sql:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {tables}")
        before = [statistics(table, column)[1] for table, column in migration.ENCRYPTED_COLUMNS]
        for statement in operation.sql:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {tables}")

    assert before == [1, 1, 1]
    for table, column in migration.ENCRYPTED_COLUMNS:
        assert statistics(table, column) == (0, 0), (table, column)


def test_the_schedule_keeps_the_promise_for_the_configured_bound():
    timing = keyring.schedule()
    assert timing.bound == settings.REFERRAL_SHRED_WITHIN == timedelta(hours=24)
    assert timing.grace <= timing.job_every
    assert timing.worst_case <= timing.bound * 0.6, timing.worst_case
    assert timing.cache == timedelta(minutes=5)
    entry = settings.CELERY_BEAT_SCHEDULE["referrals-rotate-key-epochs"]
    assert entry["schedule"] == timing.job_every.total_seconds()
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


@pytest.mark.parametrize("hours", ["0.01", "2", "72", "720"])
def test_the_schedule_keeps_the_promise_for_any_bound(hours):
    code = (
        "import django; django.setup(); from referrals import keyring; t = keyring.schedule(); "
        "print(t.bound.total_seconds(), t.worst_case.total_seconds(), t.grace <= t.job_every)"
    )
    result = run_python("-c", code, env={**os.environ, "REFERRAL_SHRED_HOURS": hours})
    assert result.returncode == 0, result.stderr
    bound, worst, grace_fits = result.stdout.split()
    assert float(bound) == float(hours) * 3600
    assert float(worst) <= 0.6 * float(bound)
    assert grace_fits == "True"
