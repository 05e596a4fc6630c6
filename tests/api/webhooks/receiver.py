"""A real HTTP receiver on loopback for webhook tests: answers from a script of statuses and
records every request with the time it arrived, and when each answer was sent."""

import ssl
import threading
import time
from dataclasses import dataclass, field

from tests.servers import LoopbackServer, QuietHandler


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.time)


class Receiver(LoopbackServer):
    """`script` is a list of (status, headers[, delay]) answered in order, then `default`.
    Status 299 answers with a 4 KiB body, to test the read cap; any other with `body`."""

    def __init__(self, default=(200, {})):
        self.default = default
        self.body = b"ok"
        self.script: list = []
        self.received: list[Received] = []
        self.answered_at: list[float] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.read_body()
                with receiver.lock:
                    receiver.received.append(Received(self.path, self.headers_lower(), body))
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.arrived.notify_all()
                status, headers, *delay = answer
                if delay:
                    time.sleep(delay[0])
                body = b"x" * 4096 if status == 299 else receiver.body
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with receiver.lock:
                    receiver.answered_at.append(time.time())
                    receiver.arrived.notify_all()

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def serve_tls(self, certfile: str, keyfile: str) -> "Receiver":
        """Answer over TLS, recording the server name (SNI) each client asked for."""
        self.server_names: list = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.port}/hooks"
        return self

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        return self._wait(self.received, count, timeout, "received")

    def answered(self, count: int, timeout: float = 30.0) -> list[float]:
        """When the first `count` answers were sent, once they have been."""
        return self._wait(self.answered_at, count, timeout, "answered")

    def _wait(self, records: list, count: int, timeout: float, what: str) -> list:
        deadline = time.time() + timeout
        with self.arrived:
            while len(records) < count:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"{what} {len(records)} of {count} webhooks")
                self.arrived.wait(left)
            return list(records)
