"""What the instructor does with the results: the class report (report.py), similarity (similarity.py), grade
files an LMS imports (export.py) and the formgrader for marking proofs (formgrader.py).

May import: ``grader``'s shared modules (the gradebook, the LMS rules, sanitizing) and ``vaelab``; never
``grader.grade``: everything here reads what a batch wrote.
"""
