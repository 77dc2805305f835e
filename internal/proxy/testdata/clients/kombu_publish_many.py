"""kombu as an application feeds its consumers: Producer.publish of
{"n": n} for n in 0..COUNT-1 to the direct exchange "jobs", routing key
one queue after the other, in ROUNDS batches. Before each batch it waits
until the queues are empty (their lists of priority 0, where
messages without a priority go) and a little more, so that the consumer
blocks (BRPOP) when it comes.

argv: ADDR COUNT ROUNDS QUEUE... Prints one JSON object: "published",
the number of messages."""

import sys
import time

from kombu import Connection, Exchange, Producer, Queue
from redis import Redis

from clientutil import address, emit

host, port = address()
r = Redis(host=host, port=port)
count, rounds = int(sys.argv[2]), int(sys.argv[3])
names = sys.argv[4:]
exchange = Exchange("jobs", type="direct")
queues = [Queue(name, exchange, routing_key=name) for name in names]
# Workers that stopped working hold the script up 10 s at most.
give_up = time.monotonic() + 10
n = 0
with Connection("redis://%s:%d/0" % (host, port)) as conn:
    with conn.channel() as ch:
        producer = Producer(ch, exchange)
        for i in range(rounds):
            while any(r.llen(name) for name in names) and time.monotonic() < give_up:
                time.sleep(0.01)
            time.sleep(0.2)
            while n < count * (i + 1) // rounds:
                producer.publish({"n": n}, routing_key=names[n % len(names)], declare=queues)
                n += 1
emit({"published": n})
