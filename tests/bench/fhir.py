"""FHIR benchmark (issue 14): reading a Task by id through the FHIR facade against the REST
detail view of the same referrals, on the same gunicorn and wrk, in interleaved rounds at 1, 4
and 16 connections (tests/bench/rounds.py). Target: the FHIR read's throughput at least 0.7 ×
the REST detail's at 16 connections, as the median of the per-round ratios. The REST detail
decrypts and records a disclosure; the Task is metadata only."""

import os

from tests.bench import harness, machine, rounds
from tests.bench.referrals import paths_script

PREFIX = "Bench FHIR"
REFERRALS = 40
TARGETS = (rounds.Target("FHIR Task read / REST detail", "rps_ratio", 16, 0.7),)


def seed() -> tuple[tuple[str, str], list[str]]:
    """Two organisations in an active partnership, REFERRALS referrals created by the real
    service (so the REST detail really decrypts), and the receiver's fresh client secret."""
    from django.utils import timezone

    from partners.models import Partnership, Service
    from partners.services import application_rotate_secret
    from referrals.models import Referral
    from referrals.services import referral_create

    sender, receiver = (
        harness.onboarded(f"{PREFIX} {role}", kind)[0] for role, kind in harness.ROLES
    )
    service, _ = Service.objects.get_or_create(organisation=receiver, name="Bench FHIR clinic")
    Partnership.objects.get_or_create(
        proposer=sender,
        partner=receiver,
        defaults={"status": "active", "data_categories": ["contact", "health", "legal", "notes"]},
    )
    existing = Referral.objects.filter(receiver=receiver, personal_data="present").count()
    for _ in range(max(0, REFERRALS - existing)):
        now = timezone.now()
        referral_create(
            sender=sender,
            data={
                "receiver": receiver.pk,
                "service": service.pk,
                "urgency": "soon",
                "person": {"name": "Mia", "languages": ["pt-BR"]},
                "safe_contact": {"do_not_contact": False, "channels": ["signal"]},
                "contact": {"handle": "mia.42"},
                "reason": "Wants PrEP and an STI test.",
                "consent": {
                    "consented": True,
                    "method": "verbal",
                    "language": "pt-BR",
                    "given_at": now,
                    "recorded_by": "staff-17",
                    "purpose": "sexual-health",
                    "recipient": receiver.pk,
                    "data_categories": ["contact", "notes"],
                    "by_representative": False,
                    "wording_version": "2026-10",
                },
            },
        )
    ids = [
        str(pk)
        for pk in Referral.objects.filter(receiver=receiver, personal_data="present").values_list(
            "pk", flat=True
        )[:REFERRALS]
    ]
    application = receiver.applications.first()
    return (application.client_id, application_rotate_secret(application=application)), ids


def run(args) -> list[dict]:
    load = os.getloadavg()[0]
    with harness.bench_database() as database_url:
        harness.setup_django()
        credentials, ids = seed()
        with (
            machine.CpuAccount(database_url) as account,
            harness.serve(database_url, workers=2) as base,
        ):
            headers = {"Authorization": f"Bearer {harness.get_token(base, *credentials)}"}

            def side(label: str, template: str) -> rounds.Side:
                paths = [template.format(id=pk) for pk in ids]
                return rounds.wrk_side(
                    label, base + paths[0], headers=headers, script=paths_script(paths)
                )

            compared = rounds.interleave(
                "Task read",
                side("fhir", "/fhir/r4/Task/{id}"),
                side("rest", "/api/v1/referrals/{id}"),
                account=account,
                duration=args.duration,
                rounds=args.rounds,
                targets=TARGETS,
            )
    rows = [{"name": f"seed: {len(ids)} referrals", "load_avg_before": round(load, 2)}, *compared]
    harness.report("fhir", rows)
    return rows
