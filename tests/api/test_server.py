"""gunicorn refuses a request line over its limit before Django sees it: the worker class
(api.server) answers that with a problem document, not gunicorn's HTML page (issue 12)."""

import json
import socket
from types import SimpleNamespace
from unittest import mock

from gunicorn.http.errors import InvalidRequestLine, LimitRequestLine

from api.devstack import gunicorn_command
from api.problems import CATALOGUE
from api.server import ProblemWorker


def answer_to(exc) -> tuple[str, dict, bytes]:
    worker = ProblemWorker.__new__(ProblemWorker)  # what handle_error reads, no process
    worker.log, worker.cfg = mock.Mock(), SimpleNamespace(limit_request_line=8190)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with mock.patch("gunicorn.workers.base.Worker.handle_error") as gunicorns:
            worker.handle_error(None, ours, ("127.0.0.1", 1), exc)
        ours.shutdown(socket.SHUT_WR)
        raw = theirs.makefile("rb").read()
    if gunicorns.called:
        return "gunicorn", {}, b""
    head, body = raw.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


def test_a_request_line_over_the_limit_is_a_414_problem():
    status, headers, body = answer_to(LimitRequestLine(9000, 8190))
    assert status == "HTTP/1.1 414 URI Too Long"
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Request-ID"]
    problem = json.loads(body)
    assert problem["type"] == CATALOGUE["uri-too-long"].uri == "/problems/uri-too-long"
    assert problem["status"] == 414
    assert "8190" in problem["detail"]


def test_other_refusals_stay_gunicorns():
    assert answer_to(InvalidRequestLine("GET /\x00"))[0] == "gunicorn"


def test_the_server_runs_it_with_the_longest_line_gunicorn_reads():
    command = gunicorn_command(8000, 2)
    assert command[command.index("--worker-class") + 1] == "api.server.ProblemWorker"
    assert command[command.index("--limit-request-line") + 1] == "8190"
