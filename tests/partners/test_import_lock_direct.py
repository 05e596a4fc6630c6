"""Behind PgBouncer in transaction mode (issue 17), the HSDS import's session-level advisory lock
is taken on the direct connection DATABASE_DIRECT_URL names, never on the pooled one: a real
process with both set, whose lock PostgreSQL reports held by the direct session."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import database_url

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = """
import json, uuid
import django
django.setup()
from django.db import connection, connections
from partners.imports import services
job = uuid.uuid4()
assert services._try_lock(job)
pids = {
    alias: connections[alias].cursor().connection.info.backend_pid
    for alias in ("default", "direct")
}
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
        [services.LOCK_CLASS, services._lock_key(job) & 0xFFFFFFFF],
    )
    holders = [row[0] for row in cursor.fetchall()]
services._unlock(job)
print(json.dumps({"pids": pids, "holders": holders}))
"""


def test_the_import_lock_is_held_by_the_direct_connection_when_one_is_configured():
    url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.test",
        "DATABASE_URL": url,
        "DATABASE_DIRECT_URL": url,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["pids"]["default"] != seen["pids"]["direct"]
    assert seen["holders"] == [seen["pids"]["direct"]]
