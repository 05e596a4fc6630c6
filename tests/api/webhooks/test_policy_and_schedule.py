"""The pure parts, tested as plain functions: the URL policy, Standard Webhooks signing, the
retry schedule with jitter and Retry-After (eager Celery would hide all of these)."""

import random
import time
from email.utils import formatdate

import pytest
from hypothesis import example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.webhooks import services, transport

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
    # IPv6 forms that carry an IPv4 address a relay or translator reaches for us (issue 11).
    ("https://[2002:7f00:1::]/hook", r"loopback.*127\.0\.0\.1.*6to4"),
    ("https://[2002:a9fe:a9fe::1]/hook", r"link-local.*169\.254\.169\.254.*6to4"),
    ("https://[2002:c0a8:10a:1::2]/hook", r"private.*192\.168\.1\.10.*6to4"),
    ("https://[2002:6464:64c8::]/hook", r"non-public.*100\.100\.100\.200|metadata"),
    ("https://[64:ff9b::a00:1]/hook", r"private.*10\.0\.0\.1.*NAT64"),
    ("https://[64:ff9b:1::a00:1]/hook", r"NAT64"),
    ("https://[64:ff9b:1:a00:0:100::]/hook", r"private.*10\.0\.0\.1.*NAT64"),
    ("https://[64:ff9b:1:5db8:d822:a:1::]/hook", r"NAT64"),
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", r"loopback.*127\.0\.0\.1.*Teredo"),
    ("https://[2001:0:a00:1:8000:63bf:a2d9:eb87]/hook", r"private.*10\.0\.0\.1.*Teredo"),
    ("https://[2001:0:4136:e378:8000:63bf:f5ff:fef5]/hook", r"private.*10\.0\.1\.10.*Teredo"),
    ("https://[::7f00:1]/hook", r"loopback.*IPv4-compatible"),
    ("https://[::a9fe:a9fe]/hook", r"link-local.*IPv4-compatible"),
    ("https://[::ffff:7f00:1]/hook", r"loopback.*IPv4-mapped"),
]


@pytest.fixture
def no_loopback(settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = False


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_internal_addresses_are_refused(no_loopback, url, why):
    with pytest.raises(transport.URLRefused, match=why):
        transport.check_url(url)


def test_a_public_https_address_passes():
    target, address = transport.check_url("https://93.184.216.34:8443/in?x=1")
    assert (address, target.port, target.path) == ("93.184.216.34", 8443, "/in?x=1")


@pytest.mark.parametrize(
    "address",
    [
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
        "::ffff:5db8:d822",  # IPv4-mapped 93.184.216.34
        "2606:4700:4700::1111",  # plain global IPv6
    ],
)
def test_embedding_forms_of_a_public_address_pass(no_loopback, address):
    assert transport.check_url(f"https://[{address}]/in")[1] == address


@pytest.mark.parametrize(("url", "why"), [case for case in REFUSED if case[0].count(":") > 2])
def test_a_name_resolving_to_an_embedding_form_is_refused(monkeypatch, no_loopback, url, why):
    """The same forms arriving through DNS (an AAAA record), as at delivery after a rebind."""
    address = url.split("[")[1].split("]")[0]
    monkeypatch.setattr(transport, "resolve", lambda host, port: [address])
    with pytest.raises(transport.URLRefused, match=why):
        transport.check_url("https://hooks.example.org/in")


def test_loopback_setting_does_not_reach_loopback_through_a_relay(settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = True
    assert transport.check_url("http://[::ffff:127.0.0.1]:9/x")[1] == "::ffff:7f00:1"
    for address in ("2002:7f00:1::", "64:ff9b::7f00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe"):
        with pytest.raises(transport.URLRefused, match="loopback"):
            transport.check_url(f"http://[{address}]:9/x")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        (
            "https://Bücher.Example/é?q=ü#frä",
            "https://xn--bcher-kva.example/%C3%A9?q=%C3%BC#fr%C3%A4",
        ),
        ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
        ("HTTPS://HOOKS.Example.ORG/In", "https://hooks.example.org/In"),
        ("https://x.org/%C3%A9/100%/a%2", "https://x.org/%C3%A9/100%25/a%252"),
        # Tabs and newlines are dropped, as browsers do (WHATWG URL).
        ("https://x.org/a b\\c\tä", "https://x.org/a%20b%5Cc%C3%A4"),
        (
            "https://[2606:4700::1111]:8443/a?b=c&d=e/f",
            "https://[2606:4700::1111]:8443/a?b=c&d=e/f",
        ),
        ("https://x.org:443/in;v=1/@:!$&'()*+,=-._~", "https://x.org:443/in;v=1/@:!$&'()*+,=-._~"),
    ],
)
def test_urls_are_normalised_to_ascii_and_normalising_twice_changes_nothing(url, normalised):
    assert transport.normalise_url(url) == normalised
    assert transport.normalise_url(normalised) == normalised
    assert normalised.isascii()


@pytest.mark.parametrize(
    "url",
    [
        "https://☃.example/",
        "https://ab\u200d.example/",
        "https://" + "é" * 70 + ".example/",
        "https://x.org:99999/",
    ],
)
def test_a_host_or_port_that_cannot_be_normalised_is_refused(url):
    with pytest.raises(transport.URLRefused):
        transport.normalise_url(url)


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/hook", "ftp://93.184.216.34/", "gopher://x/", "//x/hook"]
)
def test_only_https(url):
    with pytest.raises(transport.URLRefused, match="https"):
        transport.check_url(url)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(transport.URLRefused, match="credentials"):
        transport.check_url("https://user:pw@93.184.216.34/")


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch, no_loopback):
    # Stands in for DNS, which cannot be controlled here: one public and one private answer.
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(transport.URLRefused, match=r"hooks\.example\.org.*10\.1\.2\.3.*private"):
        transport.check_url("https://hooks.example.org/in")


def test_loopback_setting_allows_plain_http_to_loopback_only(settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = True
    assert transport.check_url("http://127.0.0.1:9/x")[1] == "127.0.0.1"
    assert transport.check_url("http://[::1]:9/x")[1] == "::1"
    with pytest.raises(transport.URLRefused, match="https"):
        transport.check_url("http://93.184.216.34/x")
    with pytest.raises(transport.URLRefused, match="private"):
        transport.check_url("http://10.0.0.1/x")
    settings.ALLOW_LOOPBACK_WEBHOOKS = False
    with pytest.raises(transport.URLRefused, match="loopback"):
        transport.check_url("http://127.0.0.1:9/x")


def test_signature_verifies_with_the_standardwebhooks_library():
    secret = transport.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"ping"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": transport.signature_header([secret], "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "ping"}
    with pytest.raises(WebhookVerificationError):
        Webhook(transport.new_secret()).verify(body, headers)


def test_during_rotation_both_secrets_sign():
    old, new = transport.new_secret(), transport.new_secret()
    header = transport.signature_header([new, old], "msg_2", 1_700_000_000, b"{}")
    signatures = header.split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert signatures[1] == transport.sign(old, "msg_2", 1_700_000_000, b"{}")


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
    assert transport.parse_retry_after("30") == 30
    assert transport.parse_retry_after(formatdate(1000.0, usegmt=True), now=940.0) == 60
    assert transport.parse_retry_after("soon") is None
    assert transport.parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("outcome", "retry"),
    [
        (transport.Outcome(status_code=500), True),
        (transport.Outcome(status_code=503), True),
        (transport.Outcome(status_code=429), True),
        (transport.Outcome(error="timed out"), True),
        (transport.Outcome(error="connection error: ConnectionRefusedError"), True),
        (transport.Outcome(status_code=302, error="redirect"), False),
        (transport.Outcome(status_code=400), False),
        (transport.Outcome(status_code=404), False),
        (transport.Outcome(error="refused: private"), False),
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


@examples(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            "{}://{}/{}?{}".format,
            st.sampled_from(["http", "https", "HTTPS"]),
            st.text(min_size=1),
            st.text(),
            st.text(),
        ),
    )
)
@example("A://\xad/")  # a host IDNA maps to nothing
def test_normalising_any_text_gives_ascii_or_a_refusal(url):
    """Whatever an owner sends, saving it answers 400 or stores a URL the worker can send."""
    try:
        normalised = transport.normalise_url(url)
    except transport.URLRefused:
        return
    assert normalised.isascii()
    assert transport.normalise_url(normalised) == normalised
