"""The OpenAPI document is a contract: the committed file must be what the code generates, and
the document must keep the properties integrators rely on (OAuth2 scheme, per-operation scopes
matching what the views enforce, problem responses, OAS 3.1)."""

import difflib
import json
import re
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.urls import Resolver404, resolve, reverse
from drf_spectacular.drainage import GENERATOR_STATS

from api.permissions import scopes_for

COMMITTED = Path(settings.BASE_DIR) / "openapi" / "openapi.yaml"
METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    """What `make openapi` writes, generated the same way (warnings and invalid documents fail)."""
    target = tmp_path_factory.mktemp("openapi") / "openapi.yaml"
    # Warnings from schema generation earlier in the session would count against this run.
    GENERATOR_STATS.reset()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    return target.read_text()


@pytest.fixture(scope="module")
def schema(generated) -> dict:
    return yaml.safe_load(generated)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_committed_document_matches_the_code(generated):
    committed = COMMITTED.read_text()
    if committed != generated:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "openapi/openapi.yaml (committed)",
                    "generated from the code",
                )
            )[:60]
        )
        pytest.fail(
            "openapi/openapi.yaml is out of date with the code: run `make openapi` and commit "
            "the result.\n" + diff
        )


def test_is_openapi_3_1(schema):
    assert schema["openapi"] == "3.1.0"


def test_nested_lists_state_their_bounds(schema):
    components = schema["components"]["schemas"]
    assert components["LocationWriteRequest"]["properties"]["schedules"]["maxItems"] == 50
    assert components["ServiceWriteRequest"]["properties"]["locations"]["maxItems"] == 50


def test_oauth2_client_credentials_scheme_with_the_six_scopes(schema):
    scheme = schema["components"]["securitySchemes"]["oauth2"]
    assert scheme["type"] == "oauth2"
    assert list(scheme["flows"]) == ["clientCredentials"]
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {
        "directory:read",
        "directory:write",
        "capacity:write",
        "referrals:read",
        "referrals:write",
        "webhooks:manage",
    }
    assert "introspection" not in flow["scopes"]
    assert all(description for description in flow["scopes"].values())


def test_only_the_public_api_is_documented(schema):
    assert schema["paths"], "no operations documented"
    token = reverse("oauth:token")
    assert all(path.startswith("/api/v1/") or path == token for path in schema["paths"])


def test_every_operation_is_documented(schema):
    problems = []
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        for key in ("summary", "description", "tags", "operationId"):
            if not operation.get(key):
                problems.append(f"{where}: no {key}")
        contents = [
            *(operation.get("requestBody", {}).get("content", {}).values()),
            *(
                content
                for code, response in operation["responses"].items()
                if code.startswith("2")
                for content in response.get("content", {}).values()
            ),
        ]
        if contents and not any("examples" in c or "example" in c for c in contents):
            problems.append(f"{where}: no example")
    assert not problems, "\n".join(problems)


def oauth(operation) -> bool:
    return any("oauth2" in entry for entry in operation.get("security", []))


PROBLEM = "#/components/schemas/Problem"


def test_every_operation_answers_errors_with_the_problem_component(schema):
    problems = []
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        # 403 is a missing scope, which only OAuth operations can have.
        for code in ("400", "401", "403", "429") if oauth(operation) else ("400", "401", "429"):
            if code not in responses:
                problems.append(f"{method.upper()} {path}: no {code} response")
        for example in (
            responses.get("403", {})
            .get("content", {})
            .get("application/problem+json", {})
            .get("examples", {})
            .values()
        ):
            if example["value"]["type"] != "/problems/insufficient-scope":
                problems.append(f"{method.upper()} {path}: a 403 that is not a missing scope")
        if "{" in path and "404" not in responses:
            problems.append(f"{method.upper()} {path}: no 404 response")
        for code, response in responses.items():
            if code[0] in "45":
                content = response.get("content", {})
                ref = content.get("application/problem+json", {}).get("schema", {}).get("$ref")
                if list(content) != ["application/problem+json"] or not ref:
                    problems.append(f"{method.upper()} {path} {code}: not a problem document")
                elif ref != PROBLEM and not (
                    # A catalogue type (the token endpoint's `oauth-error`) is a Problem too.
                    set(schema["components"]["schemas"]["Problem"]["properties"])
                    <= set(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])
                ):
                    problems.append(f"{method.upper()} {path} {code}: refers to {ref}")
    assert not problems, "\n".join(problems)
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors", "missing_scopes"} <= set(
        problem["properties"]
    )


def sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=1)), path)


def view_for(path: str, method: str):
    """The view instance Django would dispatch to, set up as DRF sets it before permissions."""
    try:
        match = resolve(sample_path(path))
    except Resolver404:
        match = resolve(re.sub(r"\{[^}]+\}", "sample", path))
    view_class = match.func.cls
    view = view_class()
    actions = getattr(match.func, "actions", None)
    if actions:
        view.action = actions.get(method)
    return view_class, view


def test_security_lists_exactly_the_scopes_each_view_enforces(schema):
    problems = []
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        if path.startswith(SELF_PREFIX):
            continue  # the person's routes: test_self_service_routes_have_their_own_scheme
        if path == reverse("oauth:token"):
            continue  # client credentials: test_openapi_token.py
        security = operation.get("security")
        if not security or len(security) != 1 or list(security[0]) != ["oauth2"]:
            problems.append(f"{where}: security is {security!r}, expected one oauth2 entry")
            continue
        published = security[0]["oauth2"]
        view_class, view = view_for(path, method)
        if getattr(view_class, "required_scopes", None) is None:
            problems.append(f"{where}: {view_class.__name__} has no required_scopes")
            continue
        required = view_class.required_scopes
        key = getattr(view, "action", None) or method.upper()
        if isinstance(required, dict) and key not in required:
            # A forgotten key is refused at run time (fail closed): make every one explicit.
            problems.append(f"{where}: {view_class.__name__}.required_scopes has no {key!r}")
        enforced = scopes_for(view, method) or []
        if sorted(published) != sorted(enforced):
            problems.append(f"{where}: publishes {published}, enforces {enforced}")
        if not set(published) <= set(settings.SCOPES):
            problems.append(f"{where}: unknown scopes {published}")
    assert not problems, "\n".join(problems)


SELF_PREFIX = "/api/v1/self/"


def test_self_service_routes_have_their_own_scheme(schema):
    """The person's routes take the self-service token (an HTTP bearer scheme of its own, not
    OAuth), except the exchange of claim code and PIN, which is explicitly anonymous; each
    documents its problems, and no other route accepts the self-service scheme."""
    scheme = schema["components"]["securitySchemes"]["selfToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "not an OAuth token" in scheme["description"]
    seen = set()
    for path, method, operation in operations(schema):
        security = operation.get("security")
        if not path.startswith(SELF_PREFIX):
            assert "selfToken" not in json.dumps(security), (method, path)
            continue
        seen.add((method, path))
        view_class, _ = view_for(path, method)
        assert [a.__name__ for a in view_class.authentication_classes] == [
            "SelfTokenAuthentication"
        ], path
        assert operation["tags"] == ["self-service"]
        if (method, path) == ("post", SELF_PREFIX + "token"):
            assert security == [{}], "anonymous, and said so (OWASP write-restricted)"
            assert "self-service-refused" in operation["responses"]["422"]["description"]
            assert "Retry-After" in operation["responses"]["429"]["description"]
        else:
            assert security == [{"selfToken": []}], (method, path, security)
            assert "10 minutes" in operation["responses"]["401"]["description"]
        assert "403" not in operation["responses"], (method, path)
    assert {path for _, path in seen} == {
        SELF_PREFIX + name
        for name in ("token", "status", "disclosures", "withdraw", "safe-contact")
    }


def test_me_needs_a_token_but_no_scope(schema):
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"oauth2": []}]


def test_docs_pages_load_nothing_from_another_host(http):
    for url in ("/api/docs", "/api/redoc"):
        response = http.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        external = re.findall(r"""(?:src|href)=["'](?:https?:)?//[^"']+""", html)
        assert not external, external
    # Swagger UI's default online validator would send the schema URL to another host.
    assert '"validatorUrl": null' in http.get("/api/docs").content.decode()
    schema = http.get("/api/schema")
    assert schema.status_code == 200
    assert schema["Content-Type"].startswith("application/vnd.oai.openapi")
