"""The pure parts, tested as plain functions: the URL policy, Standard Webhooks signing, the
retry schedule with jitter and Retry-After (eager Celery would hide all of these)."""

import random
import time
from email.utils import formatdate

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.webhooks import delivery as wire
from api.webhooks import services

REFUSED = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.0.0.1/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:169.254.169.254]/hook", "link-local"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "link-local"),
    ("https://[64:ff9b::7f00:1]/hook", "loopback"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://0.0.0.0/hook", "reserved"),
    ("https://100.64.0.1/hook", "non-public"),
    ("https://[fd00:ec2::254]/hook", "metadata"),
    ("https://192.168.1.10/hook", "private"),
    ("https://[fc00::1]/hook", "private"),
]


@pytest.fixture
def no_loopback(settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = False


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_internal_addresses_are_refused(no_loopback, url, why):
    with pytest.raises(wire.URLRefused, match=why):
        wire.check_url(url)


def test_a_public_https_address_passes():
    target, address = wire.check_url("https://93.184.216.34:8443/in?x=1")
    assert (address, target.port, target.path) == ("93.184.216.34", 8443, "/in?x=1")


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/hook", "ftp://93.184.216.34/", "gopher://x/", "//x/hook"]
)
def test_only_https(url):
    with pytest.raises(wire.URLRefused, match="https"):
        wire.check_url(url)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(wire.URLRefused, match="credentials"):
        wire.check_url("https://user:pw@93.184.216.34/")


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch, no_loopback):
    # Stands in for DNS, which cannot be controlled here: one public and one private answer.
    monkeypatch.setattr(wire, "resolve", lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(wire.URLRefused, match=r"hooks\.example\.org.*10\.1\.2\.3.*private"):
        wire.check_url("https://hooks.example.org/in")


def test_loopback_setting_allows_plain_http_to_loopback_only(settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = True
    assert wire.check_url("http://127.0.0.1:9/x")[1] == "127.0.0.1"
    assert wire.check_url("http://[::1]:9/x")[1] == "::1"
    with pytest.raises(wire.URLRefused, match="https"):
        wire.check_url("http://93.184.216.34/x")
    with pytest.raises(wire.URLRefused, match="private"):
        wire.check_url("http://10.0.0.1/x")
    settings.ALLOW_LOOPBACK_WEBHOOKS = False
    with pytest.raises(wire.URLRefused, match="loopback"):
        wire.check_url("http://127.0.0.1:9/x")


def test_signature_verifies_with_the_standardwebhooks_library():
    secret = wire.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"ping"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": wire.signature_header([secret], "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "ping"}
    with pytest.raises(WebhookVerificationError):
        Webhook(wire.new_secret()).verify(body, headers)


def test_during_rotation_both_secrets_sign():
    old, new = wire.new_secret(), wire.new_secret()
    header = wire.signature_header([new, old], "msg_2", 1_700_000_000, b"{}")
    signatures = header.split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert signatures[1] == wire.sign(old, "msg_2", 1_700_000_000, b"{}")


def test_schedule_follows_standard_webhooks_with_jitter():
    rng = random.Random(7)
    expected = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    for attempts, base in enumerate(expected, start=1):
        delays = [services.retry_delay(attempts, rng=rng) for _ in range(200)]
        assert all(0.9 * base <= d <= 1.1 * base for d in delays)
        assert len({round(d, 3) for d in delays}) > 150, "jitter spreads retries"
    assert services.retry_delay(10) is None, "ten attempts, then give up"
    assert sum(expected) / 86400 == pytest.approx(3.15, abs=0.01), "about three days"


def test_retry_after_is_honoured_up_to_the_longest_step():
    rng = random.Random(1)
    assert services.retry_delay(1, retry_after=120, rng=rng) == 120
    assert services.retry_delay(1, retry_after=10**9, rng=rng) == 86400
    assert services.retry_delay(3, retry_after=1, rng=rng) >= 1800 * 0.9


def test_retry_after_parses_seconds_and_dates():
    assert wire.parse_retry_after("30") == 30
    assert wire.parse_retry_after(formatdate(1000.0, usegmt=True), now=940.0) == 60
    assert wire.parse_retry_after("soon") is None
    assert wire.parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("outcome", "retry"),
    [
        (wire.Outcome(status_code=500), True),
        (wire.Outcome(status_code=503), True),
        (wire.Outcome(status_code=429), True),
        (wire.Outcome(error="timed out"), True),
        (wire.Outcome(error="connection error: ConnectionRefusedError"), True),
        (wire.Outcome(status_code=302, error="redirect"), False),
        (wire.Outcome(status_code=400), False),
        (wire.Outcome(status_code=404), False),
        (wire.Outcome(error="refused: private"), False),
    ],
)
def test_what_is_retried(outcome, retry):
    assert services.is_retryable(outcome) is retry


def test_only_the_first_short_step_rides_a_countdown():
    """Longer waits must be rows for the sweeper: a Redis broker redelivers tasks held past
    its visibility timeout."""
    rng = random.Random(3)
    assert all(services.retry_delay(1, rng=rng) <= services.COUNTDOWN_LIMIT for _ in range(500))
    assert all(services.retry_delay(2, rng=rng) > services.COUNTDOWN_LIMIT for _ in range(500))
