"""What a course author edits and records: the cases, the catalogued mistakes (mutants) and the correct
variants of each assignment, the tolerance policy, and `make references` (record.py, with budgets.py).

May import: ``grader`` (the shared modules at its top) and ``vaelab``. Nothing here imports publish, grade,
sandbox or after.
"""
