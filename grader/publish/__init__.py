"""What students receive: `make release` (release.py), the leak scan every release passes (leakscan.py) and the
student edition with its calendar checks (edition.py).

May import: ``grader``'s shared modules, ``grader.author`` (stale-reference checks, budgets) and ``vaelab``.
"""
