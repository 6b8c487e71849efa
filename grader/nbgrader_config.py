"""nbgrader configuration for the course (used by grader/publish/release.py and
grader/grade/batch.py, which set CourseDirectory.root themselves).

To use the nbgrader CLI directly from the repository root:
    nbgrader generate_assignment 01_elbo --config grader/nbgrader_config.py
"""
import os

c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)

c.CourseDirectory.course_id = "vae-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# SQLite by default; a large class sets a PostgreSQL URL here or with
# `make grade DB_URL=postgresql+psycopg2://user@host/db` (psycopg2 is in requirements-dev.txt).
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.pt", "data", "checkpoints"]

# Notebooks switch to a short configuration under NBGRADER_EXECUTION, so the
# slowest graded cell finishes in seconds; two minutes leaves room for a slow
# machine while still stopping an infinite loop.
CELL_TIMEOUT = int(os.environ.get("VAELAB_CELL_TIMEOUT", "120"))
c.ExecutePreprocessor.timeout = CELL_TIMEOUT
c.Execute.timeout = CELL_TIMEOUT
c.Execute.interrupt_on_timeout = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

# Student HTML (a <script> in a written answer, display(HTML(...)) outputs) is
# made inert in every graded notebook by grader/sanitize.py; as a second line,
# whatever nbconvert renders for nbgrader (generate_feedback, the formgrader's
# submission view) goes through the same allow-list again, in memory.
# (nbconvert's own HTMLExporter.sanitize_html is not used: its bleach
# defaults turn pandas tables and headings into escaped text.)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

_ROOT = str(Path(__file__).resolve().parent.parent)  # __file__: set by traitlets' config loader
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
c.HTMLExporter.preprocessors = ["grader.sanitize.SanitizePreprocessor"]
