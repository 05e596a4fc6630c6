"""Import jobs end to end with real parts: our own Redis broker, a `celery -A api worker` process
on the test database serving the default queue (imports) and the webhooks queue, and a loopback
receiver for the `directory.import.finished` webhook. Includes a worker killed with SIGKILL in
the middle of an import, and the job resumed by the next worker without a duplicate."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.webhooks.services import endpoint_create
from partners.imports.services import directory_import_create
from partners.models import DirectoryImport, Organisation, Service
from tests.api.webhooks.processes import wait_ready
from tests.api.webhooks.receiver import Receiver
from tests.conftest import database_url
from tests.partners.imports import hsds_service, json_file, upload
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


class Worker:
    """A Celery worker process on both queues; `kill()` is SIGKILL: no shutdown, no ack."""

    def __init__(self, broker, tmp_path, name):
        self.log_path = tmp_path / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "api.settings.test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker.url,
            "PYTHONPATH": str(ROOT),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "api", "worker", "-Q", "celery,webhooks",
            "--pool", "threads", "-c", "4", "-l", "info", "--without-gossip",
            "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_ready(self.process, self.log_path)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        print(self.log_path.read_text())  # shown only when the test fails


@pytest.fixture
def workers(broker, tmp_path, taxonomy):
    started = []

    def start():
        worker = Worker(broker, tmp_path, f"worker{len(started)}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(job_id, condition, timeout=120.0) -> DirectoryImport:
    deadline = time.monotonic() + timeout
    while True:
        job = DirectoryImport.objects.get(pk=job_id)
        if condition(job):
            return job
        assert time.monotonic() < deadline, (job.status, job.done, job.total, job.failure)
        time.sleep(0.02)


def test_an_uploaded_import_runs_on_the_worker_and_its_webhook_arrives(
    workers, client, organisation
):
    workers()
    with Receiver() as receiver:
        endpoint_create(
            organisation=organisation,
            url=receiver.url,
            event_types=["directory.import.finished"],
        )
        response = upload(client, json_file([hsds_service(), hsds_service("Second")]))
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        job = wait_for(job_id, lambda j: j.status == "succeeded")
        assert (job.created_count, job.done, job.total) == (2, 2, 2)
        body = client.get(f"/api/v1/directory/imports/{job_id}").json()
        assert body["status"] == "succeeded" and body["counts"]["created"] == 2
        (received,) = receiver.wait_for(1, timeout=60)
        event = json.loads(received.body)
        assert event["type"] == "directory.import.finished"
        assert event["data"]["import_id"] == job_id
        assert event["data"]["counts"] == {"created": 2, "updated": 0, "skipped": 0, "refused": 0}


def directory(organisations: int, services_each: int) -> bytes:
    """A steward's directory: organisations with their services, as `/organizations?
    full_service=true` pages them."""
    contents = []
    for n in range(organisations):
        organization_id = str(uuid.uuid4())
        services = [
            hsds_service(f"Service {n}-{m}", organization_id=organization_id)
            for m in range(services_each)
        ]
        contents.append(
            {
                "id": organization_id,
                "name": f"Imported organisation {n:03}",
                "description": "From a 211 directory.",
                "services": services,
            }
        )
    return json.dumps({"contents": contents}).encode()


def test_a_worker_killed_mid_import_is_resumed_by_the_next_without_duplicates(workers):
    organisations, services_each = 60, 40
    document = directory(organisations, services_each)
    first = workers()
    job = directory_import_create(
        organisation=None,
        file=io.BytesIO(document),
        size=len(document),
        import_format="json",
    )
    # Some organisations are written, not all: the kill lands in the middle of writing.
    wait_for(job.pk, lambda j: j.status == "running" and j.created_count >= services_each * 3)
    first.kill()
    interrupted = DirectoryImport.objects.get(pk=job.pk)
    assert interrupted.status == "running"
    assert interrupted.created_count < organisations * services_each, "finished before the kill"
    written = interrupted.created_count
    assert Service.objects.count() == written, "an organisation is written whole or not at all"
    workers()  # on start, it queues the jobs no live session runs
    finished = wait_for(job.pk, lambda j: j.status == "succeeded")
    assert finished.attempts == 2
    assert finished.created_count == organisations * services_each
    assert (finished.done, finished.total) == (organisations * services_each,) * 2
    assert Service.objects.count() == organisations * services_each
    assert Organisation.objects.filter(name__startswith="Imported organisation").count() == 60
    # No HSDS id was written twice, in any organisation.
    counts = Counter(Service.objects.values_list("external_id", flat=True))
    assert max(counts.values()) == 1


def test_a_job_whose_task_was_lost_is_queued_again_by_the_resume_sweep(workers, organisation):
    document = json.dumps([hsds_service()]).encode()
    job = directory_import_create(
        organisation=organisation,
        file=SimpleUploadedFile("d.json", document),
        size=len(document),
        import_format="json",
        enqueue=False,  # as if the broker had been down when it was uploaded
    )
    DirectoryImport.objects.filter(pk=job.pk).update(created=job.created - timedelta(minutes=5))
    workers()
    finished = wait_for(job.pk, lambda j: j.status == "succeeded")
    assert finished.created_count == 1
