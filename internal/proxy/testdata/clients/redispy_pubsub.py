"""redis-py's pubsub() with its default options, as an application uses it:
100 subscribers over 16 channels, two patterns and keyspace notifications
(the servers have notify-keyspace-events KEA), 10,000 messages published in
turn to the 16 channels and 200 INCRs of 4 keys (the plan of
redis_pubsub_test.go). Each subscriber must get exactly the messages of its
channels and patterns, in publish order per channel.

argv: ADDR. Prints one JSON object."""

import fnmatch
import time

import redis

from clientutil import address, emit, error

MESSAGES = 10000
INCRS = 200

host, port = address()
r = redis.Redis(host=host, port=port)


def plan(i):
    chans = ["news.%d" % (i % 16)]
    other = "news.%d" % ((i * 7 + 3) % 16)
    if other != chans[0]:
        chans.append(other)
    if i % 10 == 5:
        chans.append("__keyspace@0__:kv%d" % (i % 4))
    elif i % 10 == 7:
        chans.append("__keyevent@0__:incrby")
    pats = []
    if i % 4 == 0:
        pats.append("news.1*")
    if i % 25 == 3:
        pats.append("__key*__:kv1")
    return chans, pats


def published():
    for j in range(MESSAGES):
        yield "news.%d" % (j % 16), "m%d" % j
    for j in range(INCRS):
        yield "__keyspace@0__:kv%d" % (j % 4), "incrby"
        yield "__keyevent@0__:incrby", "kv%d" % (j % 4)


def want(i):
    chans, pats = plan(i)
    out = {}
    for ch, payload in published():
        if ch in chans:
            out.setdefault(("", ch), []).append(payload)
        for p in pats:
            if fnmatch.fnmatchcase(ch, p):
                out.setdefault((p, ch), []).append(payload)
    return out


out = {}
try:
    subs = []
    for i in range(100):
        chans, pats = plan(i)
        p = r.pubsub()
        p.subscribe(*chans)
        if pats:
            p.psubscribe(*pats)
        confirmations = 0
        deadline = time.time() + 10
        while confirmations < len(chans) + len(pats) and time.time() < deadline:
            m = p.get_message(timeout=1)
            if m is not None and m["type"] in ("subscribe", "psubscribe"):
                confirmations += 1
        subs.append(p)

    pipe = r.pipeline(transaction=False)
    for j in range(MESSAGES):
        pipe.publish("news.%d" % (j % 16), "m%d" % j)
        if len(pipe) == 500:
            pipe.execute()
    pipe.execute()
    for j in range(INCRS):
        r.incr("kv%d" % (j % 4))

    wants = [want(i) for i in range(100)]
    totals = [sum(len(v) for v in w.values()) for w in wants]
    got = [{} for _ in range(100)]
    counts = [0] * 100
    deadline = time.time() + 40
    while sum(counts) < sum(totals) and time.time() < deadline:
        idle = True
        for i, p in enumerate(subs):
            while counts[i] < totals[i]:
                m = p.get_message(timeout=0)
                if m is None:
                    break
                idle = False
                pattern = m["pattern"].decode() if m["pattern"] else ""
                key = (pattern, m["channel"].decode())
                got[i].setdefault(key, []).append(m["data"].decode())
                counts[i] += 1
        if idle:
            time.sleep(0.005)
    good = 0
    errors = []
    for i in range(100):
        if got[i] == wants[i]:
            good += 1
        elif len(errors) < 3:
            errors.append("subscriber %d: %d messages, want %d" % (i, counts[i], totals[i]))
    out["subscribers"] = len(subs)
    out["correct"] = good
    out["received"] = sum(counts)
    out["errors"] = errors
    for p in subs:
        p.close()
except redis.RedisError as e:
    out["failed"] = error(e)
emit(out)
