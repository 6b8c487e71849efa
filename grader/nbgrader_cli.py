"""``nbgrader`` as grader/grade/batch.py runs it, one process per notebook, a second faster.

Importing nbformat imports jsonschema's format checkers, and one of them,
``rfc3987_syntax``, compiles a Lark grammar at import time: 0.85 s of the
1.9 s that ``python -m nbgrader`` spends before doing anything (measured
with ``python -X importtime``; docs/benchmarks.md). The checker validates
IRI strings, a format no notebook schema uses, so grading processes start
without it: jsonschema treats a missing checker as an unchecked format.
Everything else is nbgrader's own command line, unchanged.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError

if __name__ == "__main__":
    from nbgrader.apps.nbgraderapp import main

    sys.exit(main())
