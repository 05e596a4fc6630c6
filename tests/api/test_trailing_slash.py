"""One convention for every route: no trailing slash, OAuth's and the docs pages' included (the
Django admin keeps its own). A path that differs from a route only by its slash is a 404 problem
naming the route, so a client that guessed wrong learns the right path from the answer."""

import re

import pytest
import yaml
from django.conf import settings

from tests.api.helpers import assert_problem
from tests.api.routes import walk
from tests.conftest import issue_token

# Django's admin is its own application with its own convention; `/me/` redirects to the
# person's page (people type what they see printed), see referrals/me/urls.py.
OWN_CONVENTION = ("/admin/", "/me/")


def concrete(template: str) -> str:
    return re.sub(r"{[^}]+}", "00000000-0000-4000-8000-000000000000", template)


def served() -> list[str]:
    return sorted(
        {
            route.template
            for route in walk()
            if route.template != "/" and not route.template.startswith(OWN_CONVENTION)
        }
    )


def test_no_route_ends_in_a_slash():
    slashed = [template for template in served() if template.endswith("/")]
    assert slashed == []
    # Every API route, the OAuth endpoints and the docs pages are among them.
    assert {"/api/v1/referrals", "/oauth/token", "/oauth/introspect", "/api/docs"} <= set(served())


def test_no_documented_path_ends_in_a_slash():
    document = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
    assert [path for path in document["paths"] if path.endswith("/")] == []
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert not flow["tokenUrl"].endswith("/")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "template",
    # The FHIR facade answers OperationOutcomes (next test); `/me/` redirects to `/me`.
    [t for t in served() if not t.startswith("/fhir/") and t != "/me"],
)
def test_a_slash_too_many_names_the_route(http, template):
    route = concrete(template)
    body = assert_problem(http.post(route + "/"), 404)
    assert body["route"] == route
    assert route in body["detail"]
    assert body["instance"] == route + "/"


@pytest.mark.django_db
def test_the_fhir_facade_names_the_route_in_its_outcome(http):
    response = http.get("/fhir/r4/Task/")
    assert response.status_code == 404
    assert "/fhir/r4/Task" in response.content.decode()


@pytest.mark.django_db
def test_the_admin_keeps_its_slash_and_says_so(http):
    body = assert_problem(http.get("/admin"), 404)
    assert body["route"] == "/admin/"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/api/v1/nothing", "/nothing/"])
def test_a_path_near_no_route_is_a_plain_404(http, path):
    body = assert_problem(http.get(path), 404)
    assert "route" not in body
    assert body["detail"] == "No resource at this URL."


@pytest.mark.django_db
def test_an_unknown_object_is_not_a_slash_problem(http, make_organisation, make_application):
    token = issue_token(make_application(make_organisation()))
    response = http.get(
        "/api/v1/referrals/00000000-0000-4000-8000-000000000000",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert "route" not in assert_problem(response, 404)
