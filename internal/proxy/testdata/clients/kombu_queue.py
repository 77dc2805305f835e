"""kombu (Celery's messaging library) over its Redis transport, with its
default options: a SimpleQueue put and a non-blocking get with its ack,
then a Producer publishing to a declared direct exchange and queue. The
transport keeps a queue in one list per priority ("messages",
"messages\\x06\\x163", ...), whose sizes it reads with a MULTI/EXEC
pipeline; it writes its unacked index with another. The queue names are
chosen so that a queue's lists are on two servers of the test's pool.

argv: ADDR. Prints one JSON object. A blocking get (BRPOP) is left out."""

from kombu import Connection, Exchange, Producer, Queue
from redis import Redis

from clientutil import address, emit, plain

host, port = address()
r = Redis(host=host, port=port)
out = {}
with Connection("redis://%s:%d/0" % (host, port)) as conn:
    sq = conn.SimpleQueue("messages")
    sq.put({"n": 1})
    sq.put({"n": 2})
    out["llen_after_put"] = r.llen("messages")
    out["qsize"] = sq.qsize()
    msg = sq.get_nowait()
    out["got"] = msg.payload
    msg.ack()
    out["qsize_after_get"] = sq.qsize()
    out["unacked_after_ack"] = r.hlen("unacked")

    exchange = Exchange("mail", type="direct")
    queue = Queue("emails", exchange, routing_key="emails")
    with conn.channel() as ch:
        Producer(ch).publish({"task": "x"}, exchange=exchange, routing_key="emails", declare=[queue])
        out["llen_emails"] = r.llen("emails")
        out["bindings"] = plain(r.smembers("_kombu.binding.mail"))
        bound = queue(ch)
        out["declare_passive"] = list(bound.queue_declare(passive=True))
        out["purged"] = bound.purge()
    out["cleared"] = sq.clear()
    sq.close()
emit(out)
