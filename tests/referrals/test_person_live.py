"""Every flow of issue 13 end to end, as deployed: gunicorn started the way `make run` starts it
(on a free port, on the test database), partners with tokens from its own token endpoint, a
Celery worker of our own (webhooks and scheduled jobs) on a Redis of our own, and each side's
webhooks delivered to a real loopback receiver and verified with `standardwebhooks`.

Then the person's page in headless Chromium (Debian's package, driven by Playwright; installed
with apt-get when missing, as `make verify` does): code and PIN, the status in Thai and in
Spanish, stop contact, withdraw, and the sender's and receiver's reads give 410. Without
JavaScript, since the page must not need it; the quick exit then with JavaScript, which must
replace the history entry and end the session. A screenshot of each step goes to
var/verify/me/ (printed)."""

import base64
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone
from playwright.sync_api import sync_playwright
from standardwebhooks import Webhook

from api.celery import app as celery_app
from api.devstack import gunicorn_command
from partners.services import application_create, service_create
from referrals.models import Consent, SelfServiceToken
from tests.api.webhooks.processes import start_worker, wait_ready
from tests.api.webhooks.receiver import Receiver
from tests.conftest import database_url
from tests.referrals.conftest import PIN, ensure_taxonomy, referral_payload
from tests.servers import free_port, stop
from tests.verify.browser import ARGS
from tests.verify.tools import CHROMIUM, ensure_chromium, ensure_fonts

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(settings.BASE_DIR)
SCREENSHOTS = ROOT / "var" / "verify" / "me"
WAIT = 60.0


class Party:
    """A partner organisation talking to the live server with a token from its token endpoint,
    hearing its webhooks on a receiver of its own."""

    def __init__(self, base: str, organisation, receiver: Receiver):
        application, secret = application_create(
            organisation=organisation, scopes=list(settings.SCOPES)
        )
        basic = base64.b64encode(f"{application.client_id}:{secret}".encode()).decode()
        token = requests.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        self.base = base
        self.organisation = organisation
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        self.receiver = receiver
        endpoint = self.call("post", "/webhook-endpoints", json={"url": receiver.url,
                                                                  "event_types": ["*"]})  # fmt: skip
        assert endpoint.status_code == 201, endpoint.text
        self.verifier = Webhook(endpoint.json()["secret"])

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, f"{self.base}/api/v1{path}", timeout=30, **kwargs)

    def event(self, event_type: str, referral: str) -> dict:
        """The webhook of this type for this referral, once it arrived and its signature held."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for got in list(self.receiver.received):
                payload = self.verifier.verify(got.body, got.headers)
                if payload["type"] == event_type and payload["data"]["referral_id"] == referral:
                    return payload
            time.sleep(0.1)
        raise AssertionError(f"{self.organisation.name}: no {event_type} for {referral}")

    def events(self, referral: str) -> list[str]:
        return [
            payload["type"]
            for got in list(self.receiver.received)
            if (payload := self.verifier.verify(got.body, got.headers))["data"].get("referral_id")
            == referral
        ]


class Stack:
    def __init__(self, base: str, sender: Party, receiver: Party, service):
        self.base, self.sender, self.receiver, self.service = base, sender, receiver, service

    def referral(self, **overrides) -> dict:
        body = referral_payload(self.receiver.organisation, self.service, **overrides)
        response = self.sender.call("post", "/referrals", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def etag(self, party: Party, referral: str) -> str:
        return party.call("get", f"/referrals/{referral}").headers["ETag"]


@pytest.fixture
def stack(transactional_db, tmp_path, workdir, broker, sender_org, receiver_org, partnership):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker.url,
        "ALLOW_LOOPBACK_WEBHOOKS": "1",
        "XDG_RUNTIME_DIR": str(workdir),
    }
    server_log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        gunicorn_command(port, 2), cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT
    )
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = start_worker(broker.url, database_url(), log=worker_log, queues="celery,webhooks")
    processes = [server, worker]
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        wait_ready(worker, tmp_path / "worker.log", timeout=WAIT)
        ensure_taxonomy()
        service = service_create(organisation=receiver_org, name="Clinic", taxonomy=["sti-testing"])
        with Receiver() as sender_hooks, Receiver() as receiver_hooks:
            yield Stack(
                base,
                Party(base, sender_org, sender_hooks),
                Party(base, receiver_org, receiver_hooks),
                service,
            )
    finally:
        for process in processes:
            stop(process, timeout=20)
        server_log.close()
        worker_log.close()
        # Shown by pytest only when the test fails.
        print((tmp_path / "gunicorn.log").read_text(errors="replace")[-5000:])
        print((tmp_path / "worker.log").read_text(errors="replace")[-5000:])


def test_every_flow_end_to_end_with_verified_webhooks(stack):
    sender, receiver = stack.sender, stack.receiver

    # Either side records a revocation; the other side hears.
    by_receiver = stack.referral()["id"]
    revoked = receiver.call("post", f"/referrals/{by_receiver}/consent/revoke",
                            json={"method": "phone"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    told = sender.event("referral.consent_revoked", by_receiver)["data"]
    assert (told["side"], told["method"]) == ("receiver", "phone")
    for party in (sender, receiver):
        assert party.call("get", f"/referrals/{by_receiver}").status_code == 410

    # Safe contact: the sender replaces it (If-Match), the receiver hears and reads it first;
    # the receiver records "do not contact me" without an ETag, the sender hears.
    moved = stack.referral()["id"]
    changed = sender.call(
        "patch",
        f"/referrals/{moved}/safe-contact",
        json={"do_not_contact": False, "channels": ["signal"], "method": "phone",
              "instructions": "New Signal number only."},
        headers={"If-Match": stack.etag(sender, moved)},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert receiver.event("referral.safe_contact_changed", moved)["data"]["side"] == "sender"
    first = receiver.call("get", f"/referrals/{moved}").json()
    assert next(iter(first)) == "safe_contact"
    assert first["safe_contact"]["instructions"] == "New Signal number only."
    stopped = receiver.call("patch", f"/referrals/{moved}/safe-contact",
                            json={"do_not_contact": True, "method": "in_person"})  # fmt: skip
    assert stopped.status_code == 200, stopped.text
    assert sender.event("referral.safe_contact_changed", moved)["data"]["side"] == "receiver"
    assert "contact" not in sender.call("get", f"/referrals/{moved}").json()

    # Consent: the beat job's warning, through the worker, then the renewal.
    renewing = stack.referral()["id"]
    Consent.objects.filter(referral_id=renewing).update(
        expires_at=timezone.now() + timezone.timedelta(days=6)
    )
    celery_app.send_task("referrals.warn_expiring_consents")
    warned = sender.event("referral.consent_expiring", renewing)["data"]
    assert warned["expires_at"]
    renewed = sender.call(
        "post",
        f"/referrals/{renewing}/consent/renew",
        json={"method": "verbal", "language": "th", "wording_version": "2027-01",
              "recorded_by": "staff-9"},
    )  # fmt: skip
    assert renewed.status_code == 200, renewed.text
    receiver.event("referral.consent_renewed", renewing)
    assert "referral.consent_expiring" not in receiver.events(renewing), "the sender's to ask"

    # Self-service over the API: code and PIN, status, who opened, stop contact, withdraw.
    own = stack.referral(self_service_pin=PIN)
    assert own["self_service"] is True and PIN not in json.dumps(own)
    receiver.call("get", f"/referrals/{own['id']}")
    person = requests.Session()
    token = person.post(
        f"{stack.base}/api/v1/self/token",
        json={"code": own["claim_code"], "pin": PIN},
        timeout=30,
    )
    assert token.status_code == 201, token.text
    person.headers["Authorization"] = f"Bearer {token.json()['token']}"
    status = person.get(f"{stack.base}/api/v1/self/status?lang=th", timeout=30).json()
    assert status["status"] == "ส่งคำขอของคุณแล้ว เขายังไม่ได้ตอบ"
    opened = person.get(f"{stack.base}/api/v1/self/disclosures", timeout=30).json()["results"]
    assert [row["organisation"] for row in opened] == ["Clínica Aberta"]
    assert person.patch(f"{stack.base}/api/v1/self/safe-contact", json={"do_not_contact": True},
                        timeout=30).status_code == 200  # fmt: skip
    for party in (sender, receiver):
        assert party.event("referral.safe_contact_changed", own["id"])["data"]["side"] == "person"
    withdrawn = person.post(f"{stack.base}/api/v1/self/withdraw?lang=es", timeout=30)
    assert withdrawn.json()["status"] == "Retiraste tu permiso. Tus datos fueron borrados."
    for party in (sender, receiver):
        assert party.event("referral.consent_revoked", own["id"])["data"]["side"] == "person"
        assert party.call("get", f"/referrals/{own['id']}").status_code == 410
    again = requests.post(f"{stack.base}/api/v1/self/token",
                          json={"code": own["claim_code"], "pin": PIN}, timeout=30)  # fmt: skip
    assert again.status_code == 422, "the code is gone with the data"
    # And a partner token is refused on the person's routes, the person's on a partner's.
    assert sender.call("get", "/self/status").status_code == 401
    assert person.get(f"{stack.base}/api/v1/referrals/{own['id']}", timeout=30).status_code == 401


def tokens_of(referral: str) -> int:
    """Self-service tokens of a referral, read in a thread of its own: Playwright's sync API
    runs an event loop in this one, where Django refuses database calls."""

    def count() -> int:
        try:
            return SelfServiceToken.objects.filter(referral_id=referral).count()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(count).result()


def shoot(page, name: str, taken: list) -> None:
    path = SCREENSHOTS / f"{len(taken) + 1:02d}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    taken.append(path)


def test_the_page_in_chromium(stack):
    ensure_chromium()
    ensure_fonts()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    sender, receiver = stack.sender, stack.receiver
    own = stack.referral(self_service_pin=PIN)
    rid = own["id"]
    receiver.call("get", f"/referrals/{rid}")
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            # The whole flow without JavaScript: the page must not need it.
            context = browser.new_context(java_script_enabled=False, locale="en-GB")
            page = context.new_page()
            page.goto(f"{stack.base}/me")
            assert page.locator("#quick-exit").is_visible()
            shoot(page, "sign-in", taken)
            page.fill("#code", own["claim_code"])
            page.fill("#pin", PIN)
            page.get_by_role("button", name="Open").click()
            page.wait_for_selector("#status")
            shoot(page, "status", taken)
            assert page.locator("#disclosures").inner_text().startswith("Clínica Aberta")

            page.click("a[lang=th]")
            assert page.inner_text("#status") == "ส่งคำขอของคุณแล้ว เขายังไม่ได้ตอบ"
            assert page.locator("html").get_attribute("lang") == "th"
            shoot(page, "status-thai", taken)

            page.click("a[lang=es]")
            assert page.inner_text("#status") == (
                "Tu solicitud fue enviada. Todavía no han respondido."
            )
            shoot(page, "status-spanish", taken)

            page.get_by_role("button", name="No me contacten").click()
            assert "Listo. No te van a contactar." in page.inner_text("main")
            assert page.inner_text("#next-step").startswith("No te van a contactar.")
            shoot(page, "contact-stopped", taken)
            for party in (sender, receiver):
                party.event("referral.safe_contact_changed", rid)
            first = receiver.call("get", f"/referrals/{rid}").json()
            assert next(iter(first)) == "safe_contact"
            assert first["safe_contact"]["do_not_contact"] is True

            page.click("#withdraw")
            shoot(page, "withdraw-confirm", taken)
            page.click("#confirm-withdraw")
            assert page.inner_text("#status") == (
                "Retiraste tu permiso. Tus datos fueron borrados."
            )
            shoot(page, "withdrawn", taken)
            for party in (sender, receiver):
                party.event("referral.consent_revoked", rid)
                gone = party.call("get", f"/referrals/{rid}")
                assert gone.status_code == 410, gone.text
                assert gone.json()["type"] == "/problems/consent-revoked"
            context.close()

            # The quick exit, with JavaScript: to the neutral site (served here by the
            # browser itself: tests need no internet), no referrer, the history entry
            # replaced, and the session ended on the way out.
            other = stack.referral(self_service_pin=PIN)
            context = browser.new_context()
            exits = []

            def neutral(route):
                exits.append(route.request.headers)
                route.fulfill(status=200, content_type="text/html", body="<h1>Weather</h1>")

            context.route(settings.QUICK_EXIT_URL + "**", neutral)
            page = context.new_page()
            page.goto(f"{stack.base}/me")
            page.fill("#code", other["claim_code"])
            page.fill("#pin", PIN)
            page.click("button[type=submit]")
            page.wait_for_selector("#status")
            assert tokens_of(other["id"]) == 1
            page.click("#quick-exit")
            page.wait_for_url(settings.QUICK_EXIT_URL)
            shoot(page, "quick-exit", taken)
            assert "referer" not in exits[0]
            deadline = time.monotonic() + WAIT
            while tokens_of(other["id"]):
                assert time.monotonic() < deadline, "the quick exit ended the session"
                time.sleep(0.1)
            page.go_back()
            assert "/me" in page.url
            assert page.locator("#pin").is_visible(), "back shows the sign-in, not the status"
            context.close()
        finally:
            browser.close()
    print("screenshots:", *taken, sep="\n  ")
    assert len(taken) == 8
