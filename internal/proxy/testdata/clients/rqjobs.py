"""The job functions that rq_enqueue.py enqueues: RQ stores a job as the
importable name of its function ("rqjobs.add") and its arguments."""


def add(a, b):
    return a + b
