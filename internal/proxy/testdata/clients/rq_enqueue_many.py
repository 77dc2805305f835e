"""RQ as an application feeds its workers: Queue(name,
connection=Redis(...)).enqueue(rqjobs.record, n) for n in 0..COUNT-1,
round robin over the queues, in ROUNDS batches. Before each batch it
waits until the queues are empty and a little more, so that the workers
block (BLPOP) when it comes.

argv: ADDR COUNT ROUNDS QUEUE... Prints one JSON object: "enqueued",
the number of jobs."""

import sys
import time

from redis import Redis
from rq import Queue

import rqjobs
from clientutil import address, emit

host, port = address()
count, rounds = int(sys.argv[2]), int(sys.argv[3])
r = Redis(host=host, port=port)
queues = [Queue(name, connection=r) for name in sys.argv[4:]]
# Workers that stopped working hold the script up 10 s at most.
give_up = time.monotonic() + 10
n = 0
for i in range(rounds):
    while any(q.count for q in queues) and time.monotonic() < give_up:
        time.sleep(0.01)
    time.sleep(0.2)
    while n < count * (i + 1) // rounds:
        queues[n % len(queues)].enqueue(rqjobs.record, n)
        n += 1
emit({"enqueued": n})
