"""gunicorn's sync worker, answering a request line over its limit with a problem document like
every other refusal of this API, instead of gunicorn's own HTML page."""

import json
import uuid

from gunicorn import util
from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.sync import SyncWorker


class ProblemWorker(SyncWorker):
    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, LimitRequestLine):
            return super().handle_error(req, client, addr, exc)
        # "Invalid request" like gunicorn's own line, which api.logging.RequestDataFilter keeps
        # without the request line (it can hold a claim code).
        self.log.warning("Invalid request: the request line is over the limit")
        try:
            util.write_nonblock(client, uri_too_long(self.cfg.limit_request_line))
        except Exception:
            self.log.debug("Failed to send error message.")


def uri_too_long(limit: int) -> bytes:
    # Imported here: the master loads this class before Django is set up.
    from api.problems import CATALOGUE

    problem = CATALOGUE["uri-too-long"]
    body = json.dumps(
        {
            "type": problem.uri,
            "title": problem.title,
            "status": problem.status,
            "detail": f"The request line is over {limit} bytes: send fewer or shorter query "
            "parameters.",
        }
    ).encode()
    head = (
        f"HTTP/1.1 {problem.status} URI Too Long\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "Cache-Control: no-store\r\n"
        # Like every answer (api.middleware): the headers, and so the id sent, were not read.
        f"X-Request-ID: {uuid.uuid4().hex}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body
