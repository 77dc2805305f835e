"""The job functions that rq_enqueue.py enqueues: RQ stores a job as the
importable name of its function ("rqjobs.add") and its arguments."""


def add(a, b):
    return a + b


def record(n):
    """rq_workers.py's job: appends n to the list done, over the worker's
    own connection, so that the test sees each job run exactly once."""
    from rq import get_current_job

    get_current_job().connection.rpush("done", n)
