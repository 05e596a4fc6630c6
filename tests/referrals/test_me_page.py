"""The person's page, /me, through Django's test client with CSRF checks on: the same services
as the self-service API, the nine languages, under 30 KB, nothing from another host, one cookie
(the ten-minute session), `Referrer-Policy: no-referrer`, a quick exit that works without
JavaScript. The browser test (test_person_live.py) drives it in Chromium."""

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client

from api.models import Event
from referrals.models import PersonalData, SelfServiceToken
from tests.referrals.conftest import PIN

PAGE_LIMIT = 30 * 1024


class Forms(HTMLParser):
    """The CSRF token of the page's forms, and every URL it refers to."""

    def __init__(self):
        super().__init__()
        self.csrf = None
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "csrfmiddlewaretoken":
            self.csrf = attrs["value"]
        for name in ("href", "src", "action"):
            if attrs.get(name):
                self.urls.append(attrs[name])


def parse(response) -> Forms:
    forms = Forms()
    forms.feed(response.content.decode())
    return forms


@pytest.fixture
def browser(db):
    return Client(enforce_csrf_checks=True)


def post(browser, path: str, data: dict, page=None):
    page = page or browser.get("/me")
    return browser.post(path, {**data, "csrfmiddlewaretoken": parse(page).csrf})


def signed_in(browser, code: str, pin: str = PIN):
    response = post(browser, "/me", {"code": code, "pin": pin})
    assert response.status_code == 302 and response["Location"] == "/me", response.content
    return browser.get(response["Location"])


def test_the_page_is_small_local_private_and_has_a_quick_exit(browser):
    response = browser.get("/me")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert len(response.content) < PAGE_LIMIT
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    html = response.content.decode()
    assert html.count(f'nonce="{nonce}"') == 2, "only its own style and script run"
    # Nothing loaded from anywhere, and the only link away is the quick exit.
    forms = parse(response)
    external = [url for url in forms.urls if re.match(r"^(https?:)?//", url)]
    assert external == [settings.QUICK_EXIT_URL]
    exit_link = re.search(r'<a id="quick-exit"[^>]*>', html).group(0)
    assert 'rel="noreferrer"' in exit_link and f'href="{settings.QUICK_EXIT_URL}"' in exit_link
    assert "location.replace" in html, "with JavaScript the exit replaces the history entry"
    assert "<script src" not in html and "<link" not in html and "<img" not in html
    # One cookie: the session, which holds the CSRF secret, for ten minutes.
    assert list(response.cookies) == ["sessionid"]
    cookie = response.cookies["sessionid"]
    assert cookie["max-age"] == 600 and cookie["httponly"]
    assert forms.csrf


def test_csrf_is_checked(browser, self_referral):
    code = self_referral()["claim_code"]
    browser.get("/me")
    forged = browser.post("/me", {"code": code, "pin": PIN})
    assert forged.status_code == 302, "a person gets the page again, in words"
    assert not SelfServiceToken.objects.exists()
    again = browser.get(forged["Location"])
    assert "This page was open too long" in again.content.decode()


def test_the_null_origin_of_a_no_referrer_page_passes_a_foreign_one_does_not(
    browser, self_referral
):
    """Browsers send `Origin: null` with the forms of a no-referrer page; the token decides."""
    code = self_referral()["claim_code"]
    page = browser.get("/me")
    token = parse(page).csrf
    foreign = browser.post(
        "/me", {"code": code, "pin": PIN, "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://attacker.example",
    )  # fmt: skip
    assert not SelfServiceToken.objects.exists()
    assert "This page was open too long" in browser.get(foreign["Location"]).content.decode()
    page = browser.get("/me")
    forged = browser.post(
        "/me", {"code": code, "pin": PIN, "csrfmiddlewaretoken": "x" * 64}, HTTP_ORIGIN="null"
    )
    assert forged.status_code == 302 and not SelfServiceToken.objects.exists()
    good = browser.post(
        "/me",
        {"code": code, "pin": PIN, "csrfmiddlewaretoken": parse(browser.get("/me")).csrf},
        HTTP_ORIGIN="null",
    )
    assert good.status_code == 302 and SelfServiceToken.objects.count() == 1


def test_elsewhere_a_csrf_failure_is_still_a_problem_document(db):
    from referrals.me.views import csrf_failure

    request = Client().get("/api/v1/taxonomy").wsgi_request
    response = csrf_failure(request)
    assert (response.status_code, response["Content-Type"]) == (403, "application/problem+json")


def test_sign_in_status_stop_contact_and_withdraw(browser, self_referral, sender, receiver):
    created = self_referral()
    page = signed_in(browser, created["claim_code"].lower())
    html = page.content.decode()
    # In the language consent was explained in (pt-BR), with nothing about the person.
    assert page["Content-Language"] == "pt"
    assert "O seu pedido foi enviado. Ainda não responderam." in html
    for word in ("Mia", "PrEP", "sunflower", "mia.42"):
        assert word not in html
    assert len(page.content) < PAGE_LIMIT

    thai = browser.get("/me?lang=th")
    assert "ส่งคำขอของคุณแล้ว เขายังไม่ได้ตอบ" in thai.content.decode()
    spanish = browser.get("/me?lang=es")
    assert "Tu solicitud fue enviada. Todavía no han respondido." in spanish.content.decode()
    assert "Spanish" not in spanish.content.decode() and "Español" in spanish.content.decode()

    receiver.get(f"/api/v1/referrals/{created['id']}")
    shown = browser.get("/me").content.decode()
    assert "Clínica Aberta" in shown, "who opened the details"

    stopped = post(browser, "/me/contact", {"stop": "1"}, page=spanish)
    assert stopped.status_code == 302
    after = browser.get("/me").content.decode()
    assert "Listo. No te van a contactar." in after
    detail = receiver.get(f"/api/v1/referrals/{created['id']}").json()
    assert detail["safe_contact"]["do_not_contact"] is True
    assert detail["safe_contact"]["changed_by"] == "person"

    confirm = browser.get("/me/withdraw")
    assert "¿Retirar tu permiso?" in confirm.content.decode()
    before = Event.objects.count()
    done = post(browser, "/me/withdraw", {}, page=confirm)
    assert done.status_code == 302
    final = browser.get("/me").content.decode()
    assert "Retiraste tu permiso. Tus datos fueron borrados." in final
    assert "tu código ya no va a funcionar" in final
    assert not PersonalData.objects.filter(referral_id=created["id"]).exists()
    told = Event.objects.order_by("created", "id")[before:]
    assert sorted((e.type, e.organisation_id) for e in told) == sorted(
        [
            ("referral.consent_revoked", sender.organisation.pk),
            ("referral.consent_revoked", receiver.organisation.pk),
        ]
    )
    for client in (sender, receiver):
        assert client.get(f"/api/v1/referrals/{created['id']}").status_code == 410


def test_the_same_refusal_as_the_api_and_the_same_lock(browser, self_referral, create_referral):
    with_pin = self_referral()["claim_code"]
    without_pin = create_referral()["claim_code"]
    pages = {
        post(Client(enforce_csrf_checks=True), "/me", {"code": code, "pin": pin}).content
        for code, pin in ((with_pin, "000001"), ("ZZZZ2345", "000001"), (without_pin, PIN))
    }
    texts = {re.sub(r'(nonce|value)="[^"]+"', "", page.decode()) for page in pages}
    assert len(texts) == 1
    assert "That did not work." in texts.pop()
    for _ in range(4):  # the fifth failure on this code, counting the one above
        post(browser, "/me", {"code": with_pin, "pin": "000002"})
    locked = post(browser, "/me", {"code": with_pin, "pin": PIN})
    assert locked.status_code == 200
    assert "Too many tries." in locked.content.decode()
    assert not SelfServiceToken.objects.exists()


def test_leaving_ends_the_token_and_the_session(browser, self_referral):
    page = signed_in(browser, self_referral()["claim_code"])
    assert SelfServiceToken.objects.count() == 1
    left = post(browser, "/me/exit", {}, page=page)
    assert left.status_code == 302
    assert not SelfServiceToken.objects.exists()
    assert "sessionid" in left.cookies and left.cookies["sessionid"].value == ""
    assert "Check your request" in browser.get("/me").content.decode()


def test_an_expired_token_asks_for_the_code_again(browser, self_referral):
    signed_in(browser, self_referral()["claim_code"])
    SelfServiceToken.objects.update(expires="2000-01-01T00:00:00Z")
    page = browser.get("/me").content.decode()
    assert "this page closed after 10 minutes" in page
    assert 'name="pin"' in page


@pytest.mark.parametrize("code", [code for code, _ in settings.LANGUAGES])
def test_every_language_is_complete_and_small(browser, self_referral, code):
    in_english = Client()
    in_english.get("/me?lang=en")
    english = signed_in(in_english, self_referral()["claim_code"]).content.decode()
    page = browser.get(f"/me?lang={code}")
    signed = signed_in(browser, self_referral()["claim_code"])
    assert len(page.content) < PAGE_LIMIT and len(signed.content) < PAGE_LIMIT
    assert signed["Content-Language"] == code, "a chosen language outlasts the sign-in"
    if code == "en":
        return
    text = signed.content.decode()
    for sentence in ("Your request was sent.", "Who opened your details", "Do not contact me"):
        assert sentence in english
        assert sentence not in text, (code, sentence)


def test_me_with_a_slash_leads_to_the_page(browser):
    response = browser.get("/me/")
    assert (response.status_code, response["Location"]) == (302, "/me")
