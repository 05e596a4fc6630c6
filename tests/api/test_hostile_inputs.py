"""Hostile inputs through the live server, run as users run it: gunicorn started the way
`make run` starts it (api.devstack.gunicorn_command), under production settings, against the
test database. Every input gets a 4xx problem (or, for what gunicorn itself refuses before
Django sees it, gunicorn's own 4xx), never a 500. Then the server's stdout and stderr are
searched for the path or query string of every request: paths hold claim codes, query strings
what a person needs, and DATA.md promises neither reaches a log.

Each request carries its own marker in its path and query string, so "no marker in the logs"
means no path and no query string of any of them, whichever logger would have written it."""

import base64
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from api.devstack import gunicorn_command
from partners.services import service_create
from tests.api.routes import api_routes
from tests.conftest import database_url, issue_token
from tests.referrals.conftest import active_partnership, ensure_taxonomy, referral_payload
from tests.servers import free_port

ROOT = Path(settings.BASE_DIR)
PROBLEM = "application/problem+json"


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def exchange(port: int, raw: bytes) -> Answer:
    """One request as raw bytes, so nothing on our side cleans up what is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return Answer(int(status_line.split()[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    data = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        if not int(size, 16):
            return data
        data, body = data + rest[: int(size, 16)], rest[int(size, 16) + 2 :]


def raw_request(
    method: str,
    target: bytes | str,
    *,
    token: str | None = None,
    headers: list | None = None,
    body: bytes | str | None = None,
    content_type: str = "application/json",
) -> bytes:
    target = target.encode() if isinstance(target, str) else target
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    if token:
        lines.append(b"Authorization: Bearer " + token.encode())
    for header in headers or []:
        lines.append(header.encode("latin-1") if isinstance(header, str) else header)
    if body is not None:
        body = body.encode() if isinstance(body, str) else body
        lines.append(b"Content-Type: " + content_type.encode())
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Server:
    port: int
    log: Path
    process: subprocess.Popen

    def send(self, raw: bytes) -> Answer:
        return exchange(self.port, raw)

    def logs(self) -> str:
        """Everything gunicorn and its workers wrote, once they have stopped."""
        self.process.terminate()
        self.process.wait(timeout=20)
        return self.log.read_text(errors="replace")


@contextmanager
def live_server(**env_overrides):
    workdir = Path(tempfile.mkdtemp(prefix="srn-hostile-"))
    (workdir / "run").mkdir(mode=0o700)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.production",
        "DATABASE_URL": env_overrides.get("DATABASE_URL") or database_url(),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "REFERRAL_KEKS": "live:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback stands in for the TLS proxy in front of a deployment.
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "INFO",
        "XDG_RUNTIME_DIR": str(workdir / "run"),
        **env_overrides,
    }
    env.pop("ALLOW_LOOPBACK_WEBHOOKS", None)
    port = free_port()
    log = workdir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            gunicorn_command(port, 2), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(port, log, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if server.send(raw_request("GET", "/healthz")).status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Case:
    name: str
    raw: bytes
    marker: str
    # "problem": Django answers a 4xx problem document. "refused": gunicorn refuses it before
    # Django sees it (its own 4xx page). "ok": a well-formed request, answered as usual.
    expect: str
    # For a problem: words its detail must hold, so it is refused for the right reason.
    detail: str = ""

    def judge(self, answer: Answer) -> bool:
        problem = answer.headers.get("content-type") == PROBLEM
        if self.expect == "ok":
            return answer.status == 200
        if self.expect == "refused":
            return 400 <= answer.status < 500 and not problem
        if not (400 <= answer.status < 500 and problem):
            return False
        try:
            body = answer.json()
        except ValueError:
            return False
        # The reason is in the detail, or in the field errors' pointers and details.
        errors = " ".join(f"{e['pointer']} {e['detail']}" for e in body.get("errors", []))
        return self.detail.lower() in f"{body['detail']} {errors}".lower()


class Corpus:
    def __init__(self):
        self.cases: list[Case] = []
        self.counter = itertools.count(1)

    def marker(self) -> str:
        return f"Mk{next(self.counter):03d}{secrets.token_hex(3)}"

    def add(self, name: str, expect: str, build, detail: str = "") -> None:
        marker = self.marker()
        self.cases.append(Case(name, build(marker), marker, expect, detail))


def build_corpus(world: dict) -> Corpus:
    token, receiver_token = world["token"], world["receiver_token"]
    service, referral, code = world["service"].pk, world["referral"], world["code"]
    corpus = Corpus()
    add = corpus.add

    def get(target, *, as_=token, **kw):
        return lambda m: raw_request("GET", target.format(m=m), token=as_, **kw)

    def send(method, target, body, *, as_=token, **kw):
        return lambda m: raw_request(method, target.format(m=m), token=as_, body=body, **kw)

    def form(target, body, **kw):
        return lambda m: raw_request(
            "POST",
            target.format(m=m),
            body=body.format(m=m),
            content_type="application/x-www-form-urlencoded",
            **kw,
        )

    def altered(build, old: bytes, new):
        return lambda m: build(m).replace(old, new(m), 1)

    # Well-formed requests whose paths hold a real claim code and ids: answered, never logged.
    add(
        "claim code, found",
        "ok",
        get(f"/api/v1/referrals/claim/{code}?m={{m}}", as_=receiver_token),
    )
    add("referral detail", "ok", get(f"/api/v1/referrals/{referral}?m={{m}}"))
    add("search in the query string", "ok", get("/api/v1/services?q={m}&taxonomy=sti-testing"))

    # NUL: in a path segment (the claim route), the query string, a JSON string and key, a form
    # field and a Basic header's client id. A raw NUL byte never gets past gunicorn.
    add("NUL in the claim path", "problem", get("/api/v1/referrals/claim/{m}%00x?m={m}"), "NUL")
    add("NUL in a path", "problem", get("/api/v1/services/%00{m}"), "NUL")
    add("NUL in the query", "problem", get("/api/v1/referrals?box=inbox%00{m}"), "NUL")
    add("raw NUL in the path", "refused", get("/api/v1/referrals/claim/{m}\x00x"))
    me = "/api/v1/organisations/me?m={m}"
    add("NUL in a JSON string", "problem", send("PATCH", me, '{"region": "a\\u0000b"}'))
    add("NUL in a JSON key", "problem", send("PATCH", me, '{"\\u0000": 1}'))
    token_form = "grant_type=client_credentials&client_id={m}%00&client_secret=x"
    add("NUL in a form client id", "problem", form("/oauth/token?m={m}", token_form))
    add(
        "NUL in a Basic client id",
        "problem",
        lambda m: form(
            "/oauth/token?m={m}",
            "grant_type=client_credentials",
            headers=["Authorization: Basic " + b64(f"{m}\x00:x")],
        )(m),
    )
    add("a NUL token to revoke", "problem", form("/oauth/revoke_token?m={m}", "token={m}%00"))
    add(
        "a made-up client to introspect",
        "problem",
        form("/oauth/introspect?m={m}", "token={m}&client_id={m}%ff&client_secret=%zz"),
    )

    # Deeply nested JSON.
    deep_arrays = "[" * 5000 + "]" * 5000
    deep_objects = '{"a":' * 5000 + "1" + "}" * 5000
    add("arrays 5,000 deep", "problem", send("POST", "/api/v1/referrals", deep_arrays), "nested")
    search = "/api/v1/services/search?m={m}"
    add("objects 5,000 deep", "problem", send("POST", search, deep_objects), "nested")
    languages = '{"languages":' + "[" * 100 + "]" * 100 + "}"
    add("arrays 100 deep", "problem", send("PATCH", me, languages), "nested")

    # Tampered cursors on lists ordered by time and by id. The referral list refuses unknown
    # parameters, so each marker travels inside its cursor.
    tampered = {
        "SQL in the position": lambda m: b64(f"p=' OR 1=1--{m}"),
        "a time without a zone": lambda m: b64(f"p=2024-01-01&x={m}"),
        "a position out of range": lambda m: b64("p=" + "9" * 30 + f"&x={m}"),
        "not base64": lambda m: f"%%%{m}",
        "not UTF-8": lambda m: base64.b64encode(b"p=\xff\xfe" + m.encode()).decode(),
    }
    lists = (
        "/api/v1/referrals",
        "/api/v1/organisations",
        "/api/v1/webhook-endpoints",
        f"/api/v1/services/{service}/capacity/history",
    )
    for (name, cursor), target in itertools.product(tampered.items(), lists):
        add(
            f"cursor with {name} on {target}",
            "problem",
            lambda m, target=target, cursor=cursor: raw_request(
                "GET", f"{target}?cursor={quote(cursor(m), safe='%')}", token=token
            ),
            "cursor",
        )

    # Malformed UTF-8 and invalid percent-encoding.
    add("bad UTF-8 in the claim path", "problem", get("/api/v1/referrals/claim/{m}%ff%fe"))
    add("bad UTF-8 in the query", "problem", get("/api/v1/referrals?box=%ff{m}"))
    add("bad UTF-8 in JSON", "problem", send("PATCH", me, b'{"region": "\xff\xfe"}'))
    add("a lone surrogate in JSON", "problem", send("PATCH", me, '{"region": "\\ud800"}'))
    add(
        "raw non-ASCII bytes in the path",
        "refused",
        lambda m: raw_request("GET", f"/api/v1/referrals/{m}".encode() + b"\xff\xfe", token=token),
    )
    add("bad percent-encoding in the path", "problem", get("/api/v1/referrals/claim/{m}%zz%"))
    add("bad percent-encoding in the query", "problem", get("/api/v1/referrals?box=%zz{m}%"))
    utf99 = "application/json; charset=utf-99"
    # Django ignores a charset it does not know, and reads UTF-8.
    add("an unknown charset", "ok", send("PATCH", me, "{}", content_type=utf99))
    add("not JSON at all", "problem", send("PATCH", me, "{m"))

    # Huge integers.
    capacity = f"/api/v1/services/{service}/capacity?m={{m}}"
    if_match = ['If-Match: "1"']
    huge_json = '{"available": 1' + "0" * 4400 + "}"
    huge_count = json.dumps({"available": 10**40, "maximum": 10**40, "unit": "beds"})
    for name, body in (("a 4,400-digit number", huge_json), ("a 40-digit count", huge_count)):
        add(name, "problem", send("PUT", capacity, body, as_=receiver_token, headers=if_match))
    many_digits = "9" * 3900
    add(
        "a 3,900-digit limit",
        "problem",
        get(f"/api/v1/organisations?limit={many_digits}&m={{m}}"),
        "limit",
    )
    add("a 3,900-digit HSDS page", "problem", get(f"/api/v1/hsds/services?page={many_digits}"))
    add("a number for a UUID", "problem", get("/api/v1/services/" + "9" * 60 + "{m}"))

    # Overlong headers and request lines.
    add("an 8,000-character token", "problem", get("/api/v1/me?m={m}", as_="t" * 8000))
    long_id = ["X-Request-ID: " + "r" * 8000]
    add("an 8,000-character request id", "ok", get("/api/v1/me?m={m}", headers=long_id))
    languages = ["Accept-Language: " + "en-GB;q=0.5," * 660]
    add("an 8,000-character Accept-Language", "ok", get("/api/v1/me?m={m}", headers=languages))
    long_key = ["Idempotency-Key: " + "k" * 5000]
    add("a 5,000-character Idempotency-Key", "problem", send("POST", me, "{}", headers=long_key))
    long_etag = ["If-Match: " + '"9' * 3500]
    fine = json.dumps({"available": 1, "maximum": 2, "unit": "beds"})
    add(
        "a 7,000-character If-Match",
        "problem",
        send("PUT", capacity, fine, as_=receiver_token, headers=long_etag),
    )
    padding = ["X-Padding: " + "p" * 9000]
    add("a header over gunicorn's limit", "refused", get("/api/v1/me?m={m}", headers=padding))
    add(
        "a request line over gunicorn's limit",
        "problem",
        get("/api/v1/me?m={m}&q=" + "q" * 9000),
        "request line",
    )
    many = [f"X-H{i}: v" for i in range(200)]
    add("200 headers", "refused", get("/api/v1/me?m={m}", headers=many))

    # Bodies that are not objects, to every write of every list route, and to some with ids.
    writes = [
        (method.upper(), route.template)
        for route in api_routes()
        if not route.parameters
        for method in sorted(route.methods - {"get"})
    ] + [
        ("PATCH", f"/api/v1/services/{service}"),
        ("PUT", f"/api/v1/services/{service}/capacity"),
        ("POST", f"/api/v1/referrals/{referral}/notes"),
        ("POST", f"/api/v1/referrals/{referral}/decline"),
    ]
    for (method, target), body in itertools.product(writes, ("[]", '"text"', "1", "null")):
        add(f"{body} to {method} {target}", "problem", send(method, target, body, headers=if_match))

    # Around the edges: an unknown host, an unknown method, a form where JSON belongs, a POST to
    # the admin without its CSRF token.
    add(
        "an unknown host",
        "problem",
        altered(get("/api/v1/me?m={m}"), b"127.0.0.1", lambda m: f"{m}.example".encode()),
    )
    add(
        "an unknown method",
        "problem",
        altered(get("/api/v1/referrals/claim/{m}"), b"GET ", lambda m: b"BREW "),
    )
    add("a form to a JSON route", "problem", form("/api/v1/organisations/me?m={m}", "a={m}"))
    add("the admin without CSRF", "problem", form("/admin/{m}/?m={m}", "a={m}"))
    return corpus


@pytest.fixture
def world(make_organisation, make_application):
    ensure_taxonomy()
    sender = make_organisation("Red Umbrella Collective", kind="sex_worker_led")
    receiver = make_organisation("Clínica Aberta", kind="clinic")
    active_partnership(sender, receiver)
    service = service_create(
        organisation=receiver,
        name="Walk-in testing",
        taxonomy=["sti-testing"],
        capacity={"available": 3, "maximum": 9, "unit": "appointments"},
    )
    return {
        "receiver": receiver,
        "service": service,
        "token": issue_token(make_application(sender)),
        "receiver_token": issue_token(make_application(receiver)),
    }


def assert_logs_hold_no_request_data(logs: str, markers: list[str]) -> None:
    assert "Traceback" not in logs
    leaked = [marker for marker in markers if marker.lower() in logs.lower()]
    assert not leaked, f"paths or query strings in the logs: {leaked}\n{logs[-3000:]}"


@pytest.mark.django_db(transaction=True)
def test_hostile_inputs_get_4xx_problems_and_never_reach_the_logs(world):
    with live_server() as server:
        created = server.send(
            raw_request(
                "POST",
                "/api/v1/referrals",
                token=world["token"],
                body=json.dumps(referral_payload(world["receiver"], world["service"])),
            )
        )
        assert created.status == 201, created.body
        world.update(referral=created.json()["id"], code=created.json()["claim_code"])
        corpus = build_corpus(world)
        assert len(corpus.cases) > 80

        failures = [
            (case.name, answer.status, answer.body[:200])
            for case in corpus.cases
            if not case.judge(answer := server.send(case.raw))
        ]
        claimed = server.send(corpus.cases[0].raw).json()
        logs = server.logs()

    assert not failures, "\n".join(map(str, failures))
    assert claimed["referral"]["id"] == world["referral"]
    # The logs are there (so the search below can fail): one access line per request Django
    # answered, and gunicorn's word for each request it refused itself.
    access = [line for line in logs.splitlines() if '"logger": "api.access"' in line]
    answered = sum(case.expect != "refused" for case in corpus.cases)
    assert len(access) >= answered
    refused = sum(case.expect == "refused" for case in corpus.cases)
    assert logs.count('"message": "Invalid request"') >= refused
    assert_logs_hold_no_request_data(
        logs, [case.marker for case in corpus.cases] + [world["code"], world["referral"]]
    )


def test_server_errors_do_not_log_paths_either():
    """Django logs every 5xx with its path (django.request). With the database unreachable
    every request is a 503: the lines say so, without the path or query string."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/nowhere"
        with live_server(DATABASE_URL=url, DB_CONNECT_TIMEOUT="2") as server:
            markers = [f"Dn{i}{secrets.token_hex(3)}" for i in range(3)]
            answers = [
                server.send(
                    raw_request(
                        "GET", f"/api/v1/referrals/claim/{markers[0]}?m={markers[1]}", token="x"
                    )
                ),
                server.send(raw_request("GET", f"/readyz?m={markers[2]}")),
            ]
            logs = server.logs()
    assert [answer.status for answer in answers] == [503, 503]
    assert all(answer.headers["content-type"] == PROBLEM for answer in answers)
    assert '"logger": "django.request"' in logs and "Service Unavailable" in logs
    assert_logs_hold_no_request_data(logs, markers)
