"""A kombu consumer as Celery's runs one, with the Redis transport's
default options: a Consumer over the queues, bound to the direct exchange
"jobs", and a loop of Connection.drain_events. The transport waits for a
message with one BRPOP over every list of the queues (one per priority)
and a timeout of one second. Each message {"n": n} is appended to the
list done (over a client of its own) and acked.

argv: ADDR QUEUE... Runs until SIGTERM, then closes the consumer and the
connection and exits 0."""

import signal
import socket
import sys

from kombu import Connection, Consumer, Exchange, Queue
from redis import Redis

from clientutil import address

host, port = address()
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
r = Redis(host=host, port=port)
exchange = Exchange("jobs", type="direct")
queues = [Queue(name, exchange, routing_key=name) for name in sys.argv[2:]]


def record(body, message):
    r.rpush("done", body["n"])
    message.ack()


with Connection("redis://%s:%d/0" % (host, port)) as conn:
    with Consumer(conn, queues, callbacks=[record]):
        while not stop:
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass
