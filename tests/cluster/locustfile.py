"""The cluster test's load (run by Locust in its own process: it patches the standard library
with gevent). Every request is appended to CLUSTER_REQUESTS as one JSON line (time, kind,
status, latency, error), every referral answered 201 to CLUSTER_CREATED, for the checks.

Creates carry an Idempotency-Key and are retried with the same key and body on a connection
error or a 502/503/504, as a partner system should; other requests are not retried by the
client (HAProxy retries what is safe to retry)."""

import json
import os
import time
import uuid

from locust import HttpUser, between, events, task

from tests.referral_bodies import minimal_referral
from tests.traffic import capacity_request, next_search, start_partner

CONFIG = json.loads(os.environ.get("CLUSTER_CONFIG", "{}"))
RETRYABLE = {0, 502, 503, 504}
SERVICES = list(CONFIG.get("services", []))
_requests = open(os.environ["CLUSTER_REQUESTS"], "a", buffering=1) if CONFIG else None  # noqa: SIM115
_created = open(os.environ["CLUSTER_CREATED"], "a", buffering=1) if CONFIG else None  # noqa: SIM115


@events.request.add_listener
def record(name, response_time, response=None, exception=None, context=None, **_):
    status = getattr(response, "status_code", 0) or 0
    _requests.write(
        json.dumps(
            {
                "t": time.time(),
                "name": name,
                "status": status,
                "ms": response_time,
                "error": exception is not None,
                "retry": (context or {}).get("retry", 0),
            }
        )
        + "\n"
    )


def referral_body() -> dict:
    return minimal_referral(
        receiver_id=CONFIG["receiver_id"], service_id=CONFIG["services"][0], name="Cluster"
    )


class Partner(HttpUser):
    """Searches and refers as the collective; publishes capacity and moves referrals on as the
    clinic."""

    wait_time = between(0.05, 0.15)

    def on_start(self):
        start_partner(self, CONFIG, SERVICES)
        self.mine: list[str] = []

    @task(50)
    def search(self):
        self.client.post(
            "/api/v1/services/search", json=next_search(self), headers=self.sender, name="search"
        )

    @task(15)
    def capacity(self):
        url, request = capacity_request(self, "capacity")
        with self.client.put(url, **request, catch_response=True) as response:
            self.etag = response.headers.get("ETag")
            if response.status_code == 412:
                # A PUT HAProxy retried after a node died mid-answer: it had applied.
                response.success()

    @task(20)
    def create_referral(self):
        key, body = str(uuid.uuid4()), referral_body()
        for attempt in range(8):
            with self.client.post(
                "/api/v1/referrals",
                json=body,
                headers={**self.sender, "Idempotency-Key": key},
                name="create referral",
                catch_response=True,
                context={"retry": attempt},
            ) as response:
                if response.status_code == 201:
                    referral = response.json()["id"]
                    _created.write(json.dumps({"id": referral, "key": key}) + "\n")
                    self.mine.append(referral)
                    return
                if response.status_code not in RETRYABLE:
                    response.failure(f"{response.status_code}")
                    return
                response.failure(f"{response.status_code}, retrying")
            time.sleep(min(0.2 * 2**attempt, 3))

    @task(15)
    def lifecycle(self):
        """The clinic receives and accepts one of the referrals this user sent."""
        if not self.mine:
            return
        referral = self.mine.pop(0)
        opened = self.client.get(
            f"/api/v1/referrals/{referral}", headers=self.receiver, name="lifecycle"
        )
        etag = opened.headers.get("ETag")
        if opened.status_code != 200 or not etag:
            return
        for action in ("receive", "accept"):
            response = self.client.post(
                f"/api/v1/referrals/{referral}/{action}",
                headers={**self.receiver, "If-Match": etag},
                name="lifecycle",
            )
            etag = response.headers.get("ETag")
            if response.status_code != 200 or not etag:
                return
