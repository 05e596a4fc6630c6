"""Shared fixtures: organisations, OAuth clients and API clients that carry a real bearer token
(created the way the token endpoint creates them: stored only as a checksum)."""

import secrets
import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework.test import APIClient

from api.oauth import token_checksum
from partners.models import Organisation
from partners.services import application_create

ALL_SCOPES = tuple(settings.SCOPES)


def issue_token(application, scopes=None, expires_in=900) -> str:
    raw = secrets.token_urlsafe(24)
    get_access_token_model().objects.create(
        application=application,
        token="",
        token_checksum=token_checksum(raw),
        scope=" ".join(scopes if scopes is not None else application.scopes),
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    return raw


def database_url() -> str:
    """The test database as a URL for a subprocess (a Celery worker). Host and port go in the
    query string, so a socket directory (the embedded server's) survives as well as an address."""
    params = connection.get_connection_params()
    user = quote(params.get("user") or "postgres")
    password = quote(params.get("password") or "")
    query = urlencode(
        {"host": params.get("host") or "127.0.0.1", "port": params.get("port") or 5432}
    )
    return f"postgresql://{user}:{password}@/{quote(params['dbname'])}?{query}"


def at_once(work, times: int) -> list:
    """`work()` in `times` threads released together, each on its own database connection:
    what each returned, in the order they finished. An exception in any thread fails the test."""
    barrier = threading.Barrier(times)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def pg_dump_args() -> tuple[list[str], dict]:
    """Connection arguments and environment for pg_dump against the test database."""
    params = connection.get_connection_params()
    args = [
        "-h",
        params.get("host") or "127.0.0.1",
        "-p",
        str(params.get("port") or 5432),
        "-U",
        params.get("user") or "postgres",
        "-d",
        params["dbname"],
    ]
    return args, {"PGPASSWORD": params.get("password") or ""}


@pytest.fixture(autouse=True)
def referral_keyring(settings, monkeypatch):
    """Each test its own epoch keyring, as each has its own database state: a keyring belongs
    to one database. Subprocesses (workers, servers) inherit it through the environment."""
    path = Path(tempfile.mkdtemp(prefix="srn-keyring-"))
    settings.REFERRAL_KEYRING_DIR = path
    monkeypatch.setenv("REFERRAL_KEYRING_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workdir():
    """A private folder, removed at the end. Not pytest's tmp_path: concurrent pytest runs on one
    machine prune each other's numbered tmp folders, and a long test (an embedded PostgreSQL's)
    would lose its files."""
    path = Path(tempfile.mkdtemp(prefix="srn-workdir-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_organisation(db):
    counter = iter(range(1, 10_000))

    def make(name=None, kind="clinic", **fields):
        return Organisation.objects.create(
            name=name or f"Organisation {next(counter)}", kind=kind, **fields
        )

    return make


@pytest.fixture
def make_application(db):
    def make(organisation, scopes=ALL_SCOPES):
        application, secret = application_create(organisation=organisation, scopes=list(scopes))
        application.plain_secret = secret
        return application

    return make


@pytest.fixture
def api_client_for(make_application):
    """An APIClient authenticated as `organisation` with the given scopes."""

    def make(organisation, scopes=ALL_SCOPES):
        application = make_application(organisation, scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(application)}")
        client.organisation = organisation
        client.application = application
        return client

    return make


@pytest.fixture
def broker(monkeypatch):
    """Our own Redis, and this test process publishing to it (the test settings' broker is
    in-memory; Celery reads CELERY_BROKER_URL from the environment before its own config, and
    another test may have pinned broker_write_url)."""
    from api.celery import app as celery_app
    from api.webhooks import services
    from tests.api.webhooks.processes import Broker

    running = Broker()
    running.start()
    monkeypatch.setenv("CELERY_BROKER_URL", running.url)
    monkeypatch.setattr(celery_app.conf, "broker_url", running.url)
    celery_app.conf.broker_write_url = None
    services._broker.__dict__.clear()
    yield running
    held = getattr(services._broker, "connection", None)
    if held is not None:
        held.release()
    services._broker.__dict__.clear()
    running.stop()


@pytest.fixture
def organisation(make_organisation):
    return make_organisation("Clínica Aberta", kind="clinic")


@pytest.fixture
def client(api_client_for, organisation):
    return api_client_for(organisation)


@pytest.fixture
def anonymous():
    return APIClient()
