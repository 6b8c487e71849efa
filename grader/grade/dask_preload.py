"""Dask preload for grading workers: ``make dask-worker`` starts each worker
with ``--preload grader.grade.dask_preload``.

A worker then starts what every grading attempt needs (the judge pool, the
zygote of grader/sandbox/zygote.py with its imports, the embedded digits' cache)
before it registers with the scheduler, as a local ``make grade`` does
before its first notebook (``seal.warm``). Without it the first notebook on
each worker paid about 5 s more than the others, and on a short batch that
start-up was a third of the cluster's time. The zygote belongs to the worker
process: it ends when that process ends, however it ends."""


def dask_setup(worker) -> None:  # the hook name Dask looks for
    from grader.grade import seal

    seal.warm()
