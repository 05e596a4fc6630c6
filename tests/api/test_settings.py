"""Production settings: `check --deploy` is clean with a proper SECRET_KEY, and the settings
refuse to load without one. Run in subprocesses, since settings load once per process."""

import base64
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings


def manage(*args, **env):
    """manage.py under production settings, with every required secret set unless overridden."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.production",
        "DATABASE_URL": "postgres:///unused",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "REFERRAL_KEKS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        **env,
    }
    environment = {key: value for key, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


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
