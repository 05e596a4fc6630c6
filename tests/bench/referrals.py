"""Referral benchmark: 200,000 referrals in the bench database, then over HTTP (gunicorn, 2
workers, 16 connections) creating referrals through the real API (consent checks, encryption,
events, Idempotency-Key) and reading an inbox page, beside a bare Django view that performs the
same INSERTs with raw SQL.

Targets (issue 4): create p95 ≤ 40 ms and ≥ 250/s; inbox page p95 ≤ 25 ms.

Filler rows are written with COPY: their "ciphertexts" are random bytes of realistic size (no
need to encrypt what nobody reads), so table and index sizes are those of a real network."""

import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from tests.bench import harness

TOTAL = 200_000
PAIRS = 8  # sender/receiver pairs; the measured receiver gets TOTAL / PAIRS referrals
BENCH_PREFIX = "Bench referrals"
CREATE_P95_MS = 40
CREATE_RPS = 250
INBOX_P95_MS = 25
BARE_PATH = "/bench/referrals/bare-create"


# --- Seeding ---------------------------------------------------------------------------------


def _organisations():
    """The bench network, found by name so a second run reuses it. Returns per pair
    (sender, receiver, service, partnership) and fresh client secrets for pair 0."""
    from partners.models import Organisation, Partnership, Service
    from partners.services import application_rotate_secret, organisation_onboard

    pairs = []
    secrets_by_role = {}
    for index in range(PAIRS):
        orgs = []
        for role, kind in (("sender", "sex_worker_led"), ("receiver", "clinic")):
            name = f"{BENCH_PREFIX} {role} {index}"
            organisation = Organisation.objects.filter(name=name).first()
            if organisation is None:
                organisation, application, secret = organisation_onboard(name=name, kind=kind)
            else:
                application = organisation.applications.first()
                secret = application_rotate_secret(application=application) if index == 0 else ""
            if index == 0:
                secrets_by_role[role] = (application.client_id, secret)
            orgs.append(organisation)
        sender, receiver = orgs
        service, _ = Service.objects.get_or_create(organisation=receiver, name="Bench clinic")
        partnership, _ = Partnership.objects.get_or_create(
            proposer=sender,
            partner=receiver,
            defaults={
                "status": "active",
                "data_categories": ["contact", "health", "legal", "notes"],
            },
        )
        pairs.append((sender, receiver, service, partnership))
    return pairs, secrets_by_role


def _claim_codes(count: int, taken: set[str]) -> list[str]:
    from referrals.services import CLAIM_ALPHABET

    codes: set[str] = set()
    while len(codes) < count:
        code = "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(8))
        if code not in taken:
            codes.add(code)
    return list(codes)


def seed(database_url: str, pairs) -> int:
    """Top the bench database up to TOTAL referrals with COPY. Returns how many were added."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        existing = conn.execute("SELECT count(*) FROM referrals_referral").fetchone()[0]
        missing = TOTAL - existing
        if missing <= 0:
            return 0
        taken = {row[0] for row in conn.execute("SELECT claim_code FROM referrals_referral")}
        codes = _claim_codes(missing, taken)
        now = datetime.now(UTC)
        statuses = ["requested", "received", "accepted", "in_progress", "completed", "declined"]
        needs = [["sti-testing"], ["hiv-prep-pep"], ["contraception"], []]
        referrals, consents, keys, personal = [], [], [], []
        for i in range(missing):
            sender, receiver, service, partnership = pairs[i % PAIRS]
            rid = uuid.uuid4()
            created = now - timedelta(seconds=(missing - i) * 60)
            status = statuses[i % len(statuses)]
            closed = created + timedelta(days=2) if status in ("completed", "declined") else None
            referrals.append(
                (
                    rid,
                    sender.pk,
                    receiver.pk,
                    service.pk,
                    partnership.pk,
                    ("routine", "soon", "urgent")[i % 3],
                    needs[i % len(needs)],
                    created + timedelta(days=3),
                    status,
                    "",
                    "",
                    codes[i],
                    "present",
                    1,
                    created,
                    created,
                    closed,
                )
            )
            consents.append(
                (
                    rid,
                    "verbal",
                    "pt",
                    created,
                    "staff-1",
                    "Bench",
                    ["contact", "notes"],
                    False,
                    "2026-10",
                    created + timedelta(days=90),
                )
            )
            keys.append((rid, "dev1", os.urandom(61), created))
            for field, size in (("person", 110), ("safe_contact", 230), ("reason", 90)):
                personal.append((rid, field, os.urandom(size)))
        with conn.cursor() as cursor:
            copies = (
                (
                    "referrals_referral (id, sender_id, receiver_id, service_id, partnership_id, "
                    "urgency, needs, respond_by, status, decline_reason, outcome, claim_code, "
                    "personal_data, version, created, updated, closed)",
                    referrals,
                ),
                (
                    "referrals_consent (referral_id, method, language, given_at, recorded_by, "
                    "purpose, data_categories, by_representative, wording_version, expires_at)",
                    consents,
                ),
                ("referrals_referralkey (referral_id, kid, wrapped, updated)", keys),
                ("referrals_personaldata (referral_id, field, ciphertext)", personal),
            )
            for target, rows in copies:
                with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        conn.execute("ANALYZE")
    return missing


# --- The bare comparison view (mounted by tests/bench/urls.py, bench settings only) ----------

_BARE_SQL = [
    (
        "INSERT INTO referrals_referral (id, sender_id, receiver_id, service_id, partnership_id, "
        "urgency, needs, respond_by, status, decline_reason, outcome, claim_code, personal_data, "
        "version, created, updated) VALUES (%(id)s, %(sender)s, %(receiver)s, %(service)s, "
        "%(partnership)s, 'soon', ARRAY['sti-testing'], %(respond_by)s, 'requested', '', '', "
        "%(code)s, 'present', 1, %(now)s, %(now)s)"
    ),
    (
        "INSERT INTO referrals_consent (referral_id, method, language, given_at, recorded_by, "
        "purpose, data_categories, by_representative, wording_version, expires_at) VALUES "
        "(%(id)s, 'verbal', 'pt-BR', %(now)s, 'staff-17', 'Bench', "
        "ARRAY['contact','health','legal','notes'], false, '2026-10', %(expires)s)"
    ),
    (
        "INSERT INTO referrals_referralkey (referral_id, kid, wrapped, updated) "
        "VALUES (%(id)s, 'dev1', %(wrapped)s, %(now)s)"
    ),
    (
        "INSERT INTO referrals_personaldata (referral_id, field, ciphertext) VALUES "
        "(%(id)s, 'person', %(blob)s), (%(id)s, 'safe_contact', %(blob)s), "
        "(%(id)s, 'contact', %(blob)s), (%(id)s, 'reason', %(blob)s), "
        "(%(id)s, 'health', %(blob)s), (%(id)s, 'legal', %(blob)s)"
    ),
    (
        "INSERT INTO referrals_timelineentry (referral_id, kind, actor_id, from_status, "
        "to_status, code, at) VALUES (%(id)s, 'created', %(sender)s, '', 'requested', '', "
        "%(now)s)"
    ),
    (
        # Stored dispatched, as the API stores an event no webhook endpoint wants (an
        # undispatched one would be left for the webhook sweeper of later benchmarks).
        "INSERT INTO api_event (id, type, organisation_id, data, created, dispatched_at) VALUES "
        "(%(event)s, 'referral.received', %(receiver)s, %(data)s, %(now)s, %(now)s)"
    ),
]


def bare_create(request):
    """The floor: the same INSERTs in one transaction, with no auth, parsing, validation,
    encryption or serialization. Only for the ratio in the report."""
    from django.db import connection, transaction
    from django.http import JsonResponse

    ids = _bare_ids()
    now = datetime.now(UTC)
    rid = uuid.uuid4()
    params = {
        **ids,
        "id": rid,
        "now": now,
        "respond_by": now + timedelta(days=3),
        "expires": now + timedelta(days=90),
        "code": _claim_codes(1, set())[0],
        "wrapped": os.urandom(61),
        "blob": os.urandom(120),
        "event": uuid.uuid4(),
        "data": json.dumps({"referral": str(rid), "status": "requested"}),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in _BARE_SQL:
            cursor.execute(sql, params)
    return JsonResponse({"id": str(rid)}, status=201)


_bare_cache: dict = {}


def _bare_ids() -> dict:
    """The pair the bare view writes for, looked up once per worker."""
    if not _bare_cache:
        from referrals.models import Referral

        sample = (
            Referral.objects.filter(sender__name=f"{BENCH_PREFIX} sender 0")
            .values("sender_id", "receiver_id", "service_id", "partnership_id")
            .first()
        )
        _bare_cache.update(
            sender=sample["sender_id"],
            receiver=sample["receiver_id"],
            service=sample["service_id"],
            partnership=sample["partnership_id"],
        )
    return _bare_cache


def bare_urlpatterns() -> list:
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    return [path(BARE_PATH.lstrip("/"), csrf_exempt(bare_create))]


# --- The run ---------------------------------------------------------------------------------


def _create_body(receiver, service) -> str:
    given = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return json.dumps(
        {
            "receiver": str(receiver.pk),
            "service": str(service.pk),
            "urgency": "soon",
            "needs": ["sti-testing"],
            "person": {
                "name": "Mia",
                "pronouns": "she/her",
                "age_band": "25_34",
                "languages": ["pt-BR"],
                "interpreter_needed": False,
            },
            "safe_contact": {
                "do_not_contact": False,
                "channels": ["signal"],
                "safe_times": "weekdays 10-12",
                "voicemail_ok": False,
                "may_name_organisation": False,
                "neutral_name": "Ana",
                "code_word": "sunflower",
                "instructions": "Text first; never call after 18:00.",
            },
            "contact": {"handle": "mia.42"},
            "reason": "Wants PrEP and an STI test this week.",
            "health": "Missed last PrEP refill.",
            "legal": "Landlord threatening eviction.",
            "consent": {
                "consented": True,
                "method": "verbal",
                "language": "pt-BR",
                "given_at": given,
                "recorded_by": "staff-17",
                "purpose": "Sexual health appointment",
                "recipient": str(receiver.pk),
                "data_categories": ["contact", "health", "legal", "notes"],
                "by_representative": False,
                "wording_version": "2026-10",
            },
        }
    )


# A distinct Idempotency-Key per request: wrk runs one Lua state per thread, so the key joins
# a per-run prefix, the thread number and a counter.
_IDEMPOTENCY_SCRIPT = """
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end
local counter = 0
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "%s-" .. tostring(tid) .. "-" .. tostring(counter)
  return wrk.format()
end
"""


def _assert_inbox_query_count(receiver) -> int:
    """The inbox page's query count, the same for 5 and 50 items (bench database)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from referrals.selectors import referrals_list

    counts = set()
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as captured:
            list(referrals_list(organisation=receiver, box="inbox")[:limit])
        counts.add(len(captured.captured_queries))
    assert len(counts) == 1, counts
    return counts.pop()


def _measure(database_url, credentials, body, duration) -> dict:
    with harness.serve(database_url, workers=2) as base:
        sender_token = harness.get_token(base, *credentials["sender"])
        receiver_token = harness.get_token(base, *credentials["receiver"])
        json_headers = {"Content-Type": "application/json"}
        return {
            "create": harness.wrk(
                base + "/api/v1/referrals/",
                method="POST",
                headers={**json_headers, "Authorization": f"Bearer {sender_token}"},
                body=body,
                duration=duration,
                script=_IDEMPOTENCY_SCRIPT % uuid.uuid4().hex,
            ),
            "inbox": harness.wrk(
                base + "/api/v1/referrals/?box=inbox",
                headers={"Authorization": f"Bearer {receiver_token}"},
                duration=duration,
            ),
            "bare": harness.wrk(
                base + BARE_PATH, method="POST", headers=json_headers, body="{}", duration=duration
            ),
        }


def _rows(label: str, figures: dict) -> list[dict]:
    create, inbox, bare = figures["create"], figures["inbox"], figures["bare"]

    def row(name, result, **extra):
        keys = ("p50_ms", "p95_ms", "rps", "non_2xx")
        return {"name": f"{name} [{label}]", **{k: result[k] for k in keys}, **extra}

    return [
        row(
            "POST /referrals/",
            create,
            target=f"p95≤{CREATE_P95_MS}ms, ≥{CREATE_RPS}/s",
            ok=create["p95_ms"] <= CREATE_P95_MS
            and create["rps"] >= CREATE_RPS
            and not create["non_2xx"],
        ),
        row(
            "GET /referrals/?box=inbox",
            inbox,
            target=f"p95≤{INBOX_P95_MS}ms",
            ok=inbox["p95_ms"] <= INBOX_P95_MS and not inbox["non_2xx"],
        ),
        row("bare view, same INSERTs (raw SQL)", bare),
        {
            "name": f"API create / bare [{label}]",
            "rps_ratio": round(create["rps"] / bare["rps"], 2) if bare["rps"] else None,
            "p95_ratio": round(create["p95_ms"] / bare["p95_ms"], 2) if bare["p95_ms"] else None,
        },
    ]


def _cpu_per_request(receiver, sender, body: str, count: int = 100) -> dict:
    """CPU milliseconds this process spends per request (Django test client, same settings):
    a figure the machine's other load barely moves, to read the wrk numbers against. Two
    cores, shared with wrk and PostgreSQL, cannot serve more than about 2000 / (this + the
    database's share) requests a second."""
    import time

    from django.test import Client

    from tests.conftest import issue_token

    def client_for(organisation):
        token = issue_token(organisation.applications.first())
        return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")

    writer, reader = client_for(sender), client_for(receiver)

    def create():
        key = uuid.uuid4().hex
        return writer.post(
            "/api/v1/referrals/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )

    def inbox():
        return reader.get("/api/v1/referrals/?box=inbox")

    out = {}
    for name, call, status in (("create", create, 201), ("inbox", inbox, 200)):
        assert call().status_code == status
        started = time.process_time()
        for _ in range(count):
            call()
        out[name] = round((time.process_time() - started) * 1000 / count, 2)
    return out


def run(args) -> list[dict]:
    """On the harness's gunicorn: 2 sync workers. (4 threads per worker were tried too: no
    consistent gain, the requests are CPU-bound rather than waiting on commits.)"""
    duration = getattr(args, "duration", 10)
    load = os.getloadavg()[0]
    with harness.bench_database() as database_url:
        harness.setup_django()
        pairs, credentials = _organisations()
        added = seed(database_url, pairs)
        _, receiver, service, _ = pairs[0]
        queries = _assert_inbox_query_count(receiver)
        body = _create_body(receiver, service)
        cpu = _cpu_per_request(receiver, pairs[0][0], body)
        sync = _measure(database_url, credentials, body, duration)
    rows = [
        {
            "name": f"seed: {TOTAL} referrals ({added} added now)",
            "inbox_queries": queries,
            "load_avg_before": round(load, 2),
        },
        {
            "name": "in-process CPU per request (ms)",
            "create": cpu["create"],
            "inbox": cpu["inbox"],
        },
        *_rows("2 sync workers", sync),
    ]
    harness.report("referrals", rows)
    return rows
