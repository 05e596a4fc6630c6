"""Liveness and readiness for load balancers and `make run`. Not part of the partner API."""

from django.db import connection
from django.http import JsonResponse

from api.celery import app as celery_app
from api.errors import problem


def healthz(request):
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means not ready; the kind is what we report
        connection.close_if_unusable_or_obsolete()
        return type(exc).__name__
    return None


def check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # idem
        return type(exc).__name__
    return None


def readyz(request):
    failures = {
        name: error
        for name, error in (
            ("database", check_database()),
            ("broker", check_broker()),
        )
        if error
    }
    checks = {
        name: ("unavailable" if name in failures else "ok") for name in ("database", "broker")
    }
    if failures:
        return problem(
            503,
            "Not ready: " + ", ".join(sorted(failures)) + " unavailable.",
            code="not-ready",
            instance=request.path,
            checks=checks,
        )
    return JsonResponse({"status": "ready", "checks": checks})
