"""``python -m grader.grade``: see grader/grade/batch.py."""
import sys

from grader.grade.batch import main

sys.exit(main())
