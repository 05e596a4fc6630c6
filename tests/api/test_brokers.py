"""The Redis transport (api/brokers.py) against a redis-server of the test's own: a channel whose
transport was torn down while it still held an unacknowledged message, the state a threaded
worker reaches when the broker goes away, fails with a connection error that kombu and Celery
handle, where kombu's own transport fails with an AttributeError that stops the worker; and the
message is not lost."""

import os
import subprocess
import sys
import time

import pytest
from kombu import Connection, Queue
from kombu.common import ignore_errors

from tests.api.webhooks.processes import Broker
from tests.servers import ROOT

QUEUE = Queue("brokers-test", routing_key="brokers-test")


@pytest.fixture
def broker():
    running = Broker()
    running.start()
    yield running
    running.stop()


def held_message(url: str, transport: str):
    """A connection, its channel and a message taken from the queue but not acknowledged; then
    the transport torn down under the channel, as the consumer's reconnect does."""
    connection = Connection(url, transport=transport, transport_options={"visibility_timeout": 1})
    connection.Producer().publish({"n": 1}, routing_key=QUEUE.routing_key, declare=[QUEUE])
    channel = connection.channel()
    message = QUEUE(channel).get(no_ack=False)
    assert message is not None and message.payload == {"n": 1}
    connection.transport.client = None
    return connection, channel, message


@pytest.mark.parametrize(
    "url, transport",
    [
        ("redis://127.0.0.1:6379/0", "api.brokers:Transport"),
        ("rediss://127.0.0.1:6380/0", "api.brokers:Transport"),
        ("amqp://guest:guest@127.0.0.1:5672//", None),
    ],
)
def test_settings_choose_this_transport_for_redis(url, transport):
    """As `make run` and production read it: the broker URL from the environment."""
    script = (
        "import django; django.setup(); from api.celery import app;"
        " print(app.conf.broker_transport, type(app.connection_for_write().transport).__module__)"
    )
    env = {**os.environ, "CELERY_BROKER_URL": url, "DJANGO_SETTINGS_MODULE": "api.settings.dev"}
    printed = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert printed.returncode == 0, printed.stderr
    chosen, module = printed.stdout.split()
    assert chosen == str(transport)
    assert (module == "api.brokers") == (transport is not None)


def test_kombus_own_transport_stops_on_the_torn_down_channel(broker):
    """What the workaround is for: if this starts failing, kombu has fixed it and api/brokers.py
    can go."""
    connection, channel, message = held_message(broker.url, "redis")
    with pytest.raises(AttributeError):
        ignore_errors(connection, channel.close)
    with pytest.raises(AttributeError):
        message.ack()


def test_a_torn_down_channel_is_a_connection_error(broker):
    connection, channel, message = held_message(broker.url, "api.brokers:Transport")
    ignore_errors(connection, channel.close)  # what Celery's reconnect calls: no AttributeError
    with pytest.raises(connection.connection_errors):
        message.ack()  # a pool thread's late acknowledgement: Celery logs it as lost


def test_the_unacknowledged_message_comes_back(broker):
    connection, channel, _ = held_message(broker.url, "api.brokers:Transport")
    ignore_errors(connection, channel.close)
    time.sleep(1.5)  # past the visibility timeout
    with Connection(
        broker.url, transport="api.brokers:Transport", transport_options={"visibility_timeout": 1}
    ) as again:
        consumer_channel = again.channel()
        consumer_channel.qos.restore_visible()
        redelivered = QUEUE(consumer_channel).get(no_ack=True)
        assert redelivered is not None and redelivered.payload == {"n": 1}
