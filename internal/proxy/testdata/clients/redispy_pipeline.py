"""redis-py with its default options, as an application uses it:
pipeline() is a MULTI/EXEC transaction (transaction=True by default).

argv: ADDR KEY1 KEY2 KEY3 KEY4. Runs two pipelines over the keys, the
second with a command that fails when EXEC runs it, then plain commands
on the same client; prints one JSON object."""

import sys

import redis

from clientutil import address, emit, error, plain

host, port = address()
k = sys.argv[2:6]
r = redis.Redis(host=host, port=port)
out = {}

pipe = r.pipeline()
pipe.set(k[0], "v0")
pipe.incr(k[1])
pipe.incrby(k[1], 10)
pipe.get(k[0])
pipe.rpush(k[2], "a", "b")
pipe.lrange(k[2], 0, -1)
pipe.hset(k[3], mapping={"f": "1", "g": "2"})
pipe.hgetall(k[3])
try:
    out["first"] = {"results": plain(pipe.execute())}
except redis.RedisError as e:
    out["first"] = error(e)

# The LPUSH on a string fails when EXEC runs: redis-py raises the
# command's error after the other commands were applied.
pipe = r.pipeline()
pipe.incr(k[1])
pipe.lpush(k[0], "x")
pipe.get(k[1])
try:
    out["second"] = {"results": plain(pipe.execute())}
except redis.RedisError as e:
    out["second"] = error(e)

out["exists"] = r.exists(*k)
out["counter"] = plain(r.get(k[1]))
out["after"] = plain([r.set(k[0], "after"), r.get(k[0])])
emit(out)
