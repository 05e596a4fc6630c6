"""The health check of api.db: no round trip, yet a session the server ended is noticed and
replaced before a request uses it."""

import time

import pytest
from django.db import connection


@pytest.mark.django_db(transaction=True)
def test_a_session_the_server_ended_is_replaced_before_use(django_assert_num_queries):
    connection.ensure_connection()
    assert connection.idle_socket_is_quiet()
    doomed = connection.connection
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        other.execute("SELECT pg_terminate_backend(%s)", [doomed.info.backend_pid])
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while connection.idle_socket_is_quiet():
        assert time.monotonic() < deadline, "the ended session still looks healthy"
        time.sleep(0.05)
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert connection.connection is not doomed


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_passes_without_a_query(monkeypatch):
    connection.ensure_connection()
    kept = connection.connection
    connection.health_check_done = False

    def no_query(*args, **kwargs):
        raise AssertionError("the health check ran a query")

    with monkeypatch.context() as patched:
        patched.setattr(kept, "cursor", no_query)
        patched.setattr(kept, "execute", no_query)
        connection.close_if_health_check_failed()
    assert connection.connection is kept
    assert connection.health_check_done
