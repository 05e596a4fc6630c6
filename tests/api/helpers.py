"""Helpers shared by the foundation tests: the token endpoint as a partner calls it, and the
checks every problem document must pass."""

import base64
import importlib.util
import json
import os
import tempfile
from pathlib import Path

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(http, client_id: str, secret: str, *, scope: str | None = None, basic=True):
    """POST /oauth/token with the client credentials grant, credentials in the Basic header
    (the default of OAuth client libraries) or in the body."""
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    headers = {}
    if basic:
        headers["HTTP_AUTHORIZATION"] = basic_auth(client_id, secret)
    else:
        data.update(client_id=client_id, client_secret=secret)
    return http.post("/oauth/token", data, **headers)


def obtain_token(http, application, *, scope: str | None = None) -> str:
    response = token_request(http, application.client_id, application.plain_secret, scope=scope)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def assert_problem(response, status: int) -> dict:
    """The response is an RFC 9457 problem document, and nothing like an HTML page or a trace."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    text = response.content.decode()
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    assert "Traceback" not in text and 'File "' not in text
    body = json.loads(text)
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    return body


def pgserver_bin(name: str) -> Path:
    """A binary shipped in the pgserver wheel, found without importing the package."""
    origin = importlib.util.find_spec("pgserver").origin
    return Path(origin).parent / "pginstall" / "bin" / name


def import_pgserver():
    """pgserver reads XDG_RUNTIME_DIR when imported and warns (an error here) when unset."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / "srn-test-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pgserver

    return pgserver
