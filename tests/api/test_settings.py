"""Production settings: `check --deploy` is clean with a proper SECRET_KEY, and the settings
refuse to load without one. Run in subprocesses, since settings load once per process."""

import base64
import os
import secrets
from pathlib import Path

import pytest
from django.conf import settings

from tests.servers import run_python


@pytest.fixture(autouse=True)
def private_keyring(referral_keyring):
    """The keyring directory production requires: private to the application's user."""
    referral_keyring.chmod(0o700)
    return referral_keyring


def manage(*args, **env):
    """manage.py under production settings, with every required secret set unless overridden
    (the keyring directory comes from the test's environment)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.production",
        "DATABASE_URL": "postgres:///unused",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "REFERRAL_KEKS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # The test settings set it for the suite's own process; a deployment never does.
        "ALLOW_LOOPBACK_WEBHOOKS": None,
        **env,
    }
    environment = {key: value for key, value in environment.items() if value is not None}
    return run_python("manage.py", *args, env=environment)


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("value", ["1", "true", "on"])
def test_check_deploy_refuses_loopback_webhooks(value):
    """Loopback receivers are for `make run` and the tests; in a deployment they would let any
    partner aim deliveries at the server's own services."""
    result = manage("check", "--deploy", ALLOW_LOOPBACK_WEBHOOKS=value)
    assert result.returncode != 0
    assert "api.E001" in result.stderr and "ALLOW_LOOPBACK_WEBHOOKS" in result.stderr


def test_loopback_webhooks_off_passes_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "DEBUG", ALLOW_LOOPBACK_WEBHOOKS="0")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret_key", [None, "", "short-key", "x" * 49])
def test_production_refuses_a_missing_or_short_secret_key(secret_key):
    result = manage("check", SECRET_KEY=secret_key)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    if secret_key:
        assert secret_key not in result.stderr


def test_production_refuses_the_public_dev_referral_key():
    result = manage("check", REFERRAL_KEKS=None)
    assert result.returncode != 0
    assert "REFERRAL_KEKS" in result.stderr


def test_production_requires_a_keyring_directory():
    result = manage("check", REFERRAL_KEYRING_DIR=None)
    assert result.returncode != 0
    assert "REFERRAL_KEYRING_DIR must be set" in result.stderr


@pytest.mark.parametrize("problem", ["missing", "open to others", "a file", "relative"])
def test_check_deploy_refuses_a_keyring_directory_that_is_not_private(problem, tmp_path):
    path = tmp_path / "keyring"
    if problem == "relative":
        path = Path("var/keyring")
    elif problem == "open to others":
        path.mkdir(mode=0o755)
        path.chmod(0o755)
    elif problem == "a file":
        path.write_text("")
    result = manage("check", "--deploy", REFERRAL_KEYRING_DIR=str(path))
    assert result.returncode != 0
    assert "referrals.E001" in result.stderr
    assert str(path) in result.stderr


def test_production_ignores_debug_from_the_environment():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_database_settings_bind_server_side_and_prepare_unless_told_not_to(monkeypatch):
    from api.settings.base import database_from_env

    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example.org:5432/srn")
    monkeypatch.delenv("DB_PREPARE_THRESHOLD", raising=False)
    config = database_from_env()
    assert config["ENGINE"] == "api.db" and config["CONN_HEALTH_CHECKS"]
    assert config["OPTIONS"]["server_side_binding"] is True
    assert config["OPTIONS"]["prepare_threshold"] == 2
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "off")
    assert database_from_env()["OPTIONS"]["prepare_threshold"] is None
    assert settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True


# --- `make test` runs under the test settings ---------------------------------------------------


def test_the_suite_runs_under_the_test_settings():
    # Fixtures that override settings wrap them in a holder whose SETTINGS_MODULE is None: ask
    # the settings module itself.
    loaded = settings._wrapped
    while hasattr(loaded, "default_settings"):
        loaded = loaded.default_settings
    assert loaded.SETTINGS_MODULE == "api.settings.test"


def test_make_test_runs_pytest_under_the_test_settings(tmp_path):
    """`make test` is `python -m api.devstack test`. Importing the `api` package (which running
    `api.devstack` does) must not choose the settings for it: a probe outside the project, so no
    ini file supplies them, sees only what devstack hands pytest."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from django.conf import settings\n\n\n"
        "def test_settings():\n"
        "    assert settings.SETTINGS_MODULE == 'api.settings.test'\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = "postgres:///unused"
    result = run_python(
        "-m", "api.devstack", "test", str(probe), "-p", "no:cacheprovider", env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "settings: api.settings.test (from env)" in result.stdout, result.stdout
    assert "1 passed" in result.stdout, result.stdout
