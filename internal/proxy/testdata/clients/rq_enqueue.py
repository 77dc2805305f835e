"""RQ as an application enqueues a job: Queue('default',
connection=Redis(...)).enqueue(function, args), with RQ's and redis-py's
default options. RQ writes the job hash, the queue list and the set of
queues in one MULTI/EXEC (redis-py's default pipeline).

argv: ADDR. Prints one JSON object: "id", the job's id, and "result",
what RQ and redis-py read back, which does not depend on the id."""

from redis import Redis
from rq import Queue

import rqjobs
from clientutil import address, emit, plain

host, port = address()
r = Redis(host=host, port=port)
q = Queue("default", connection=r)
job = q.enqueue(rqjobs.add, 2, 3)
status = job.get_status()
fetched = q.fetch_job(job.id)
emit({
    "id": job.id,
    "result": {
        "status": getattr(status, "value", status),  # JobStatus is a str enum
        "count": q.count,
        "job_ids_are_the_job": q.job_ids == [job.id],
        "job_hash_exists": r.exists("rq:job:" + job.id),
        "job_hash_status": plain(r.hget("rq:job:" + job.id, "status")),
        "queues": plain(r.smembers("rq:queues")),
        "fetched": [fetched.func_name, list(fetched.args)],
    },
})
