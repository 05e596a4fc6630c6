"""Sessions, users and messages exist for the admin only: API answers carry no cookie and
never touch the session table, while a steward still signs in and stays signed in."""

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from api.middleware import NO_SESSION


def test_api_answers_set_no_cookie_and_store_no_session(client, organisation):
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert not response.cookies
    assert "Vary" not in response or "Cookie" not in response["Vary"]
    assert not Session.objects.exists()
    # The admin's middlewares stepped aside: no session or message store was even made (the
    # stand-in that holds nothing is there for the CSRF middleware).
    assert response.wsgi_request.session is NO_SESSION
    assert not hasattr(response.wsgi_request, "_messages")


def test_a_steward_signs_in_and_stays_signed_in(db):
    get_user_model().objects.create_superuser("steward", "s@example.org", "pw-Steward-1")
    browser = Client()
    response = browser.post(
        reverse("admin:login"),
        {"username": "steward", "password": "pw-Steward-1", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert hasattr(response.wsgi_request, "session")
    assert "sessionid" in response.cookies
    assert Session.objects.count() == 1
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/partners/organisation/").status_code == 200
