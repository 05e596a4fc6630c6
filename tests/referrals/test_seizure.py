"""The server seizure of issue 11, run end to end against a PostgreSQL server of the test's own.

A referral is created through the API; the whole data directory (pg_wal included) is copied, as
a disk image or a file-level backup would be; consent is revoked; the real jobs (Celery beat and
a worker) then run for the promised bound (`REFERRAL_SHRED_HOURS`, shortened here). The attacker
then holds that old copy, the live server's files, and every secret the server holds now:
`REFERRAL_KEKS` and the keyring directory. From the copy started as a server (through the
application's own code, and by hand), and from every bytea value found near the referral's id in
the raw files of both (heap pages, dead tuples, WAL), nothing may decrypt.

Before epoch keys this attack recovered the referral's personal data: the copy's data key was
wrapped by the key-encryption key from the environment."""

import atexit
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.api.helpers import import_pgserver
from tests.api.webhooks.processes import Broker
from tests.referrals import seizure
from tests.servers import run_python

ROOT = Path(settings.BASE_DIR)
BOUND_HOURS = 0.01  # 36 seconds: the job runs every 1.5 s and rotates after 18 s
CANARY = "canary-" + uuid.uuid4().hex

CREATE = """
import json
from django.conf import settings
from rest_framework.test import APIClient
from partners.models import Organisation, Partnership, PartnershipStatus, Service
from partners.services import application_create
from tests.conftest import issue_token
from tests.referrals.conftest import ALL_CATEGORIES, referral_payload

sender = Organisation.objects.create(name="Sender", kind="sex_worker_led")
receiver = Organisation.objects.create(name="Receiver", kind="clinic")
Partnership.objects.create(
    proposer=sender, partner=receiver, status=PartnershipStatus.ACTIVE,
    data_categories=ALL_CATEGORIES, purposes=["health care"],
)
service = Service.objects.create(organisation=receiver, name="Clinic")
application, _ = application_create(organisation=sender, scopes=list(settings.SCOPES))
token = issue_token(application)
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Bearer " + token)
body = referral_payload(receiver, service, reason=CANARY, contact={"handle": CANARY})
response = client.post("/api/v1/referrals", body, format="json")
assert response.status_code == 201, response.content
print(json.dumps({"id": response.json()["id"], "token": token}))
"""

REVOKE = """
from rest_framework.test import APIClient
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Bearer " + TOKEN)
response = client.post(f"/api/v1/referrals/{REFERRAL}/consent/revoke")
assert response.status_code == 200, response.content
assert response.json()["personal_data"] == "revoked"
"""

# The attacker runs the application itself on the old copy, with the server's secrets of now.
READ = """
import json
from referrals.models import Referral
from referrals.selectors import personal_data_of
referral = Referral.objects.select_related("consent", "key").get(pk=REFERRAL)
try:
    print(json.dumps({"read": personal_data_of(referral)}))
except Exception as error:
    print(json.dumps({"refused": type(error).__name__}))
"""


@pytest.fixture
def postgres(workdir):
    """Start PostgreSQL servers on data directories in `workdir`; all stopped at the end."""
    pgserver = import_pgserver()
    started = []

    def start(pgdata: Path):
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()
        atexit.unregister(server._cleanup)


def shell(code: str, env: dict, **names) -> str:
    """Run `code` in a Django shell of the application, with `names` bound; its last line."""
    bound = "".join(f"{name} = {value!r}\n" for name, value in names.items())
    result = run_python("manage.py", "shell", "-c", bound + code, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def spawn(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "api", *command],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def column(url: str, sql: str, referral_id: str) -> set[bytes]:
    with psycopg.connect(url) as conn:
        return {bytes(row[0]) for row in conn.execute(sql, [referral_id])}


def test_a_seized_copy_decrypts_with_nothing_the_server_holds_after_the_bound(
    workdir, postgres, monkeypatch
):
    live = postgres(workdir / "pgdata")
    with psycopg.connect(live.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE srn")
    url = live.get_uri("srn")
    keyring = workdir / "keyring"
    kek = "seized:" + base64.b64encode(os.urandom(32)).decode()
    broker = Broker()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.test",
        "DATABASE_URL": url,
        "VAR_DIR": str(workdir / "var"),
        "REFERRAL_KEKS": kek,
        "REFERRAL_KEYRING_DIR": str(keyring),
        "REFERRAL_SHRED_HOURS": str(BOUND_HOURS),
        "CELERY_BROKER_URL": broker.url,
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    created = json.loads(shell(CREATE, env, CANARY=CANARY))
    referral = created["id"]

    # The seizure's copy, taken before the destruction: every file, WAL included.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    copy = workdir / "copy"
    subprocess.run(["cp", "-a", str(workdir / "pgdata"), str(copy)], check=True)
    # What belonged to the running server, not to the data: its pid, socket and lock files.
    for leftover in ("postmaster.pid", ".handle_pids.json", *(p.name for p in copy.glob(".s.*"))):
        (copy / leftover).unlink(missing_ok=True)

    # The attack works while the key that wrapped the copy's data key exists: the scan finds
    # the copy's values and the server's keys of then decrypt them.
    then = seizure.server_keys(kek, keyring)
    found = seizure.candidates(copy, uuid.UUID(referral))
    assert any(CANARY in text for text in seizure.recover(uuid.UUID(referral), found, found, then))

    broker.start()
    worker = spawn(
        ["worker", "-Q", "celery", "--pool", "threads", "-c", "2", "-l", "info", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        env,
        workdir / "worker.log",
    )  # fmt: skip
    beat = spawn(
        ["beat", "-l", "info", "--schedule", str(workdir / "beat-schedule")],
        env,
        workdir / "beat.log",
    )
    try:
        shell(REVOKE, env, TOKEN=created["token"], REFERRAL=referral)
        revoked = time.monotonic()
        while time.monotonic() < revoked + BOUND_HOURS * 3600:
            assert worker.poll() is None, (workdir / "worker.log").read_text()[-3000:]
            assert beat.poll() is None, (workdir / "beat.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        stop(beat)
        stop(worker)
        broker.stop()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")

    # Everything the server holds now.
    keys = seizure.server_keys(kek, keyring)
    rid = uuid.UUID(referral)

    # What each attack decrypts (the test's verdict covers all three at once).
    leaks = {}

    # 1. The copy started as a server, read by the application with the server's secrets.
    old = postgres(copy)
    old_url = old.get_uri("srn")
    answer = json.loads(shell(READ, {**env, "DATABASE_URL": old_url}, REFERRAL=referral))
    if "refused" not in answer:
        leaks["the application on the copy"] = answer

    # 2. The copy's key and ciphertexts, read by hand and tried with every key.
    wrapped = column(
        old_url, "SELECT wrapped FROM referrals_referralkey WHERE referral_id = %s", referral
    )
    ciphertexts = column(
        old_url, "SELECT ciphertext FROM referrals_personaldata WHERE referral_id = %s", referral
    )
    assert len(wrapped) == 1 and len(ciphertexts) == 7, "the copy predates the revocation"
    leaks["the copy's rows"] = seizure.recover(rid, wrapped, ciphertexts, keys)

    # 3. Every bytea value near the referral's id in the raw files of the copy and of the live
    #    server (its dead tuples and WAL), tried with every key.
    found = seizure.candidates(copy, rid) | seizure.candidates(workdir / "pgdata", rid)
    assert wrapped <= found and ciphertexts <= found, "the raw scan finds what the copy holds"
    leaks["the raw files"] = seizure.recover(rid, found, found, keys)

    assert {attack: leak for attack, leak in leaks.items() if leak} == {}
