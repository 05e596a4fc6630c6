"""A request id on every response and log line; logs are JSON lines that never hold a request
body, a query string, a token or a secret. The logs are read from the handler that settings
configure, so the real formatter and filter are what is tested."""

import io
import json
import logging
import re

import pytest

from api.logging import JSONFormatter
from tests.api.helpers import token_request
from tests.conftest import issue_token

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def log_lines():
    """Everything the configured JSON handler writes during the test, as parsed lines."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JSONFormatter)]
    assert handlers, "no JSON log handler configured"
    stream = io.StringIO()
    previous = [handler.setStream(stream) for handler in handlers]
    raw = []

    def lines():
        raw[:] = stream.getvalue().splitlines()
        return [json.loads(line) for line in raw]

    lines.text = lambda: stream.getvalue()
    yield lines
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def test_request_id_generated_when_absent(http):
    response = http.get("/healthz")
    assert GENERATED.match(response["X-Request-ID"])
    assert http.get("/healthz")["X-Request-ID"] != response["X-Request-ID"]


@pytest.mark.parametrize("incoming", ["abc-12345678", "0f6c1d3e-8a7b-4c2d-9e0f-123456789abc"])
def test_well_formed_request_id_is_echoed(http, incoming):
    assert http.get("/healthz", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "has spaces in it",
        "x" * 129,
        "inject\r\nX-Evil: 1",
        "trailing-newline-1234\n",
        "<script>alert(1)</script>",
        "",
    ],
)
def test_malformed_request_id_is_replaced(http, incoming):
    response = http.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert GENERATED.match(response["X-Request-ID"])


@pytest.mark.urls("tests.api.urls")
def test_request_id_on_error_responses(http):
    for path, status in (("/nowhere", 404), ("/api/v1/me", 401), ("/_plain_boom", 500)):
        response = http.get(path, HTTP_X_REQUEST_ID="trace-12345678")
        assert response.status_code == status
        assert response["X-Request-ID"] == "trace-12345678"


@pytest.mark.urls("tests.api.urls")
def test_logs_are_json_with_request_id_and_no_secrets(
    http, make_organisation, make_application, log_lines
):
    application = make_application(make_organisation())
    oauth = token_request(http, application.client_id, application.plain_secret, basic=False)
    token = oauth.json()["access_token"]
    stored_token = issue_token(application)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    responses = [
        oauth,
        http.get("/api/v1/me?q=query-marker-4711", HTTP_X_REQUEST_ID="req-me-000001", **auth),
        http.post(
            "/api/v1/_probe",
            {"name": "body-marker-0815", "items": [{"count": 1}]},
            content_type="application/json",
            **auth,
        ),
        http.post(
            "/api/v1/_probe",
            '{"name": "broken-body-marker',
            content_type="application/json",
            **auth,
        ),
        http.get(f"/api/v1/me?access_token={stored_token}"),
        http.get("/api/v1/_boom", HTTP_AUTHORIZATION=f"Bearer {stored_token}"),
        http.get("/nowhere?search=query-marker-4711"),
        token_request(http, application.client_id, "wrong-secret-marker"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 201, 400, 401, 500, 404, 401]

    text = log_lines.text()
    entries = log_lines()
    assert entries, "nothing was logged"
    for entry in entries:
        assert {"time", "level", "logger", "message", "request_id"} <= entry.keys()
        assert entry["request_id"] in {r["X-Request-ID"] for r in responses}, entry
    for secret in (
        token,
        stored_token,
        application.plain_secret,
        "wrong-secret-marker",
        "query-marker-4711",
        "body-marker-0815",
        "broken-body-marker",
        "Bearer",
        "Traceback",
    ):
        assert secret not in text, f"{secret!r} leaked into the logs"

    # One access line per request, carrying that request's id and the route, not the path.
    access = [e for e in entries if e["logger"] == "api.access"]
    assert [e["request_id"] for e in access] == [r["X-Request-ID"] for r in responses]
    me_line = access[1]
    assert me_line["request_id"] == "req-me-000001"
    assert me_line["route"] == "/api/v1/me"
    assert me_line["status"] == 200
    assert me_line["application"] == application.client_id
    assert access[6]["route"] == "-"

    # The 500 is logged with the exception's type, under the same request id.
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert any(
        e.get("exception") == "RuntimeError" and e["request_id"] == responses[5]["X-Request-ID"]
        for e in errors
    )


# --- paths and query strings never reach a log (issue 11) -----------------------------------


@pytest.mark.urls("tests.api.urls")
def test_django_logs_server_errors_without_their_path(http, log_lines):
    """django.request logs every 5xx as "Internal Server Error: <path>"."""
    response = http.get("/_plain/path-marker-2718?q=query-marker-3141")
    assert response.status_code == 500
    text = log_lines.text()
    entries = log_lines()
    assert any(
        e["logger"] == "django.request" and e["message"] == "Internal Server Error" for e in entries
    )
    assert "path-marker-2718" not in text and "query-marker-3141" not in text


@pytest.mark.parametrize(
    ("logger", "message", "args", "kept"),
    [
        (
            "gunicorn.error",
            "Invalid request from ip=203.0.113.9: Invalid HTTP request line: "
            "'GET /api/v1/referrals/claim/MARKER42?needs=MARKER43 HTTP/1.1'",
            (),
            "Invalid request",
        ),
        ("gunicorn.error", "Error handling request %s %s", ("GET", "/x/MARKER42"), None),
        ("django.security.csrf", "Forbidden (%s): %s", ("CSRF cookie not set.", "/MARKER42"), 403),
        (
            "py.warnings",
            "%s",
            ("/srv/x.py:12: RuntimeWarning: received a naive datetime (MARKER42)\n  warn()",),
            "/srv/x.py:12: RuntimeWarning",
        ),
    ],
    ids=["gunicorn-invalid-request", "gunicorn-error", "csrf", "warning"],
)
def test_request_data_is_stripped_from_other_loggers(log_lines, logger, message, args, kept):
    """What gunicorn, Django's security loggers and Python's warnings would write, through the
    handler settings configure: what happened stays, the path, query, value and address go."""
    # Django's log_response passes the status along; the line keeps its phrase.
    extra = {"status_code": kept} if isinstance(kept, int) else {}
    logging.getLogger(logger).warning(message, *args, extra=extra)
    text = log_lines.text()
    (entry,) = log_lines()
    assert "MARKER4" not in text and "203.0.113.9" not in text
    assert entry["message"] == {None: "Error handling request", 403: "Forbidden"}.get(kept, kept)


def test_gunicorn_access_log_is_never_written(log_lines):
    logging.getLogger("gunicorn.access").info('127.0.0.1 "GET /claim/MARKER42 HTTP/1.1" 200')
    assert log_lines.text() == ""
