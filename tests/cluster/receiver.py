"""The partners' webhook receiver, on loopback: every delivery is verified with the
`standardwebhooks` library under its endpoint's secret (one path per endpoint) and recorded by
webhook-id, as a receiver that de-duplicates would."""

import json
import threading

from standardwebhooks import Webhook

from tests.servers import LoopbackServer, QuietHandler


class VerifyingReceiver(LoopbackServer):
    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.lock = threading.Lock()
        self.deliveries = 0
        self.refused = 0
        self.by_webhook_id: dict[str, set[str]] = {}
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.read_body()
                secret = receiver.secrets.get(self.path)
                headers = self.headers_lower()
                try:
                    if secret is None:
                        raise ValueError("no endpoint at this path")
                    Webhook(secret).verify(body, headers)
                    event = json.loads(body)["data"]["id"]
                except Exception:  # any failure to verify: refused, counted
                    with receiver.lock:
                        receiver.refused += 1
                    status = 400
                else:
                    with receiver.lock:
                        receiver.deliveries += 1
                        receiver.by_webhook_id.setdefault(headers["webhook-id"], set()).add(event)
                    status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self) -> set[str]:
        with self.lock:
            return set().union(*self.by_webhook_id.values()) if self.by_webhook_id else set()
