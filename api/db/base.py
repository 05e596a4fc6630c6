"""Django's PostgreSQL backend with a health check that costs no round trip.

Django's CONN_HEALTH_CHECKS runs `SELECT 1` before the first query of every request on a
reused connection: a round trip per request, about a tenth of a directory search. A session
the server ended (a restart, a shutdown, an idle timeout) has been sent its goodbye and its
socket closed, which leaves the socket readable while the connection is idle; a healthy idle
connection has nothing to read. So the check looks at the socket instead, and a connection that
fails it is closed and reopened as before."""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self.idle_socket_is_quiet():
            self.close()
        self.health_check_done = True

    def idle_socket_is_quiet(self) -> bool:
        try:
            if self.connection.pgconn.status != pq.ConnStatus.OK:
                return False
            # poll, not select: select refuses descriptors above 1023.
            poller = select.poll()
            poller.register(self.connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False
