"""redis-py features that need more than one shared connection, with the
library's defaults: Redis(db=2) (SELECT on each connection), the
transaction() helper (WATCH, then MULTI/EXEC, retried when the key
changes), register_script (EVALSHA, SCRIPT LOAD after NOSCRIPT) and Lock
(its scripts).

argv: ADDR KEY; the keys used are KEY and KEY plus suffixes, all with
KEY's hash tag. Prints one JSON object."""

import sys

import redis

from clientutil import address, emit, error, plain

host, port = address()
k = sys.argv[2]
out = {}

db2 = redis.Redis(host=host, port=port, db=2)
db0 = redis.Redis(host=host, port=port)
try:
    out["db"] = plain([db2.set(k, "in2"), db2.get(k), db0.get(k)])
except redis.RedisError as e:
    out["db"] = error(e)

counter = k + ":counter"


def incr(pipe):
    n = int(pipe.get(counter) or 0)
    pipe.multi()
    pipe.set(counter, n + 1)


try:
    for _ in range(10):
        db0.transaction(incr, counter)
    out["transaction"] = plain(db0.get(counter))
except redis.RedisError as e:
    out["transaction"] = error(e)

try:
    add = db0.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    first = add(keys=[k + ":script"], args=[5])
    db0.script_flush()  # every server forgets it: the next call loads it again
    second = add(keys=[k + ":script"], args=[5])
    out["script"] = plain([first, second])
except redis.RedisError as e:
    out["script"] = error(e)

try:
    lock = db0.lock(k + ":lock", timeout=10)
    got = lock.acquire(blocking=False)
    again = db0.lock(k + ":lock", timeout=10).acquire(blocking=False)
    extended = lock.extend(5)
    lock.release()
    out["lock"] = plain([got, again, extended, db0.exists(k + ":lock")])
except redis.RedisError as e:
    out["lock"] = error(e)

emit(out)
