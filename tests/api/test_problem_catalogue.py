"""One problem catalogue (api/problems.py): one `type` per failure, each resolving to a page the
API serves, each type's extension members in its schema component, and no raise site sending a
member its type does not declare."""

import ast
import importlib
import inspect
import tomllib
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from api.errors import DomainError
from api.problems import CATALOGUE
from api.schema import component_name
from tests.api.helpers import assert_problem

ROOT = Path(settings.BASE_DIR)
APPS = ("api", "partners", "referrals")
# Each was a second name for a failure that already had one.
MERGED = {
    "if-match-required": "precondition-required",
    "stale-etag": "precondition-failed",
    "wrong-side": "wrong-party",
    "referral-not-found": "not-found",
}


def domain_errors() -> list[type]:
    for path in ROOT.glob("*/**/*.py"):
        relative = path.relative_to(ROOT)
        skip = {"migrations", "settings", "management"}
        if relative.parts[0] in APPS and not skip & set(relative.parts):
            module = ".".join(relative.with_suffix("").parts)
            if not module.endswith(("__main__", "tests")):
                importlib.import_module(module)
    seen, stack = [], [DomainError]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.split(".")[0] in APPS:
                seen.append(sub)
            stack.append(sub)
    return seen


def test_every_domain_error_is_in_the_catalogue_with_its_status():
    errors = domain_errors()
    assert len(errors) > 20
    for error in errors:
        assert CATALOGUE[error.code].status == error.status, error


def test_no_business_rule_answers_403():
    """403 is a token without the scope (`insufficient-scope`) or Django's own refusal
    (`forbidden`: the admin, CSRF); a rule refusing what the schema allows is a 404, 409 or
    422 (issue 12), so Schemathesis' positive_data_acceptance need not accept 403."""
    assert [error for error in domain_errors() if error.status == 403] == []
    assert {code for code, entry in CATALOGUE.items() if entry.status == 403} == {
        "insufficient-scope",
        "forbidden",
    }
    config = tomllib.loads((ROOT / "tests" / "verify" / "schemathesis.toml").read_text())
    accepted = config["checks"]["positive_data_acceptance"]["expected-statuses"]
    assert accepted == ["2XX", "404", "409", "410", "412", "422", "428"]


def test_a_type_outside_the_catalogue_cannot_be_declared():
    with pytest.raises(KeyError):
        type("Invented", (DomainError,), {"code": "invented", "status": 400})
    with pytest.raises(TypeError):
        type("WrongStatus", (DomainError,), {"code": "not-found", "status": 400})


def test_merged_types_are_gone():
    for old, new in MERGED.items():
        assert old not in CATALOGUE
        assert new in CATALOGUE


def raise_sites():
    """(class name, keyword names, where) of every DomainError raised or built with keywords."""
    names = {error.__name__: error for error in domain_errors()}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in names:
                        keywords = {k.arg for k in node.keywords if k.arg is not None}
                        yield names[name], keywords, f"{path.relative_to(ROOT)}:{node.lineno}"


def test_every_extension_member_sent_is_declared_by_its_type():
    sites = list(raise_sites())
    assert len(sites) > 50
    for error, keywords, where in sites:
        parameters = set(inspect.signature(error.__init__).parameters) - {"self", "extensions"}
        # Field errors by JSON pointer are a member of every problem (the Problem schema's).
        members = keywords - parameters - {"errors"}
        declared = set(CATALOGUE[error.code].extensions)
        assert members <= declared, f"{where}: {error.code} does not declare {members - declared}"


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_each_type_uri_resolves_to_its_page(http, code):
    entry = CATALOGUE[code]
    page = http.get(entry.uri)
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert entry.title in text and str(entry.status) in text
    for member in entry.extensions:
        assert f"<code>{member}</code>" in text
    described = http.get(entry.uri, HTTP_ACCEPT="application/json").json()
    assert described["status"] == entry.status
    assert set(described["extensions"]) == set(entry.extensions)


def test_the_index_lists_every_type(http):
    text = http.get("/problems").content.decode()
    assert all(f'href="{entry.uri}"' in text for entry in CATALOGUE.values())


def test_an_unknown_type_is_a_404_problem(http):
    assert_problem(http.get("/problems/invented"), 404)


def test_a_problem_sent_names_a_page_that_exists(http):
    body = assert_problem(http.get("/api/v1/me"), 401)
    assert http.get(body["type"]).status_code == 200


def test_each_type_has_a_schema_component_with_its_members():
    document = yaml.safe_load((ROOT / "openapi" / "openapi.yaml").read_text())
    schemas = document["components"]["schemas"]
    for entry in CATALOGUE.values():
        extra = schemas[component_name(entry.code)]["properties"]
        assert extra["type"]["const"] == entry.uri
        assert set(entry.extensions) <= set(extra)
    for member in (
        "etag",
        "allowed_actions",
        "status_now",
        "rule",
        "categories",
        "missing_scopes",
        "referral_status",
    ):
        assert any(member in entry.extensions for entry in CATALOGUE.values()), member
