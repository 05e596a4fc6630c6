"""kombu's Redis transport with one failure made survivable: the broker lost while a worker's
channel still has work to do on it.

When a worker's connection to Redis breaks, kombu closes the channel. With a threaded pool,
acknowledgements and the restore of unacknowledged messages can still run after the transport
is torn down, and kombu then fails on `None.hostname` or `None.client` (the long-lived class of
kombu bugs seen in its issues #582 and #970). Celery takes that AttributeError for an
unrecoverable error: the worker stops, or hangs while stopping, and no supervisor notices a
process that never exits.

Here it is the connection error it really is, which kombu and Celery already handle: the
acknowledgement is logged as lost and the worker reconnects. Nothing is lost with it. A message
taken but not acknowledged stays in Redis's `unacked` hash, and workers put it back once the
visibility timeout has passed, as for a worker that died; the outbox sweeper queues any webhook
delivery still due, and a delivery already made is not made twice."""

from kombu.transport import redis
from redis.exceptions import ConnectionError as BrokerGone


class Channel(redis.Channel):
    def _connparams(self, asynchronous=False):
        try:
            return super()._connparams(asynchronous=asynchronous)
        except AttributeError:
            if self.connection is not None and self.connection.client is not None:
                raise
            raise BrokerGone("the connection to the broker was closed") from None


class Transport(redis.Transport):
    Channel = Channel
