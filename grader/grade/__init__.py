"""One grading batch, `make grade`: the coordinator (batch.py: collect, resume, hand attempts to a runner, then
merge, feedback and report), one attempt of one notebook (attempt.py), the Dask runner (cluster.py), reading what
students sent (intake.py, times.py), sealing and judging (seal.py), the integrity scan and nbgrader's execution hook.

May import: ``grader``'s shared modules, ``grader.author``, ``grader.sandbox``, ``grader.after`` (the coordinator
writes the class report) and ``vaelab``. Nothing outside this package imports it except ``python -m grader.grade``.
"""
