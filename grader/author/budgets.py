"""Time budgets for grading, measured on the reference solutions.

``make references`` runs every solution notebook the way ``nbgrader
autograde`` runs a submission (``NBGRADER_EXECUTION`` set, so slow cells use
their short configuration) and records each cell's seconds and the total in
``grader/references/budgets.json``. Grading then gives

- each cell ``max(CELL_FLOOR, CELL_FACTOR x its reference time)``, never more
  than the global cap ``VAELAB_CELL_TIMEOUT`` (120 s); cells the reference
  does not have (a student's own) get ``VAELAB_EXTRA_CELL_TIMEOUT``
  (CELL_FLOOR): such a cell earns no points of its own, so when it runs
  longer it is blanked and everything else is graded;
- each notebook ``NOTEBOOK_FACTOR x the reference total + NOTEBOOK_SLACK``
  for the whole nbgrader run, kernel start included.

So an infinite loop in a TODO is stopped after about ten seconds instead of
two minutes per dependent cell, and an honest submission that is ten times
slower than the reference still has room.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from grader import HIDDEN_REFERENCES, SOLUTIONS, assignments

BUDGETS_FILE = HIDDEN_REFERENCES / "budgets.json"
CELL_FLOOR = 10.0
CELL_FACTOR = 10.0
NOTEBOOK_FACTOR = 5.0
NOTEBOOK_SLACK = 30.0


def cell_cap() -> float:
    return float(os.environ.get("VAELAB_CELL_TIMEOUT", "120"))


def measure(assignment: str) -> dict:
    """Run one solution notebook top to bottom under autograde conditions and
    return ``{"notebook_seconds", "cells": {cell key: seconds}}``."""
    import nbformat
    from nbclient import NotebookClient

    from grader.notebooks import cell_key

    source = SOLUTIONS / assignment
    with tempfile.TemporaryDirectory(prefix="vaelab-budget-") as tmp:
        folder = Path(tmp) / assignment
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "data", "checkpoints"))
        nb = nbformat.read(str(folder / f"{assignment}.ipynb"), as_version=4)
        env = dict(os.environ, NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg",
                   VAELAB_HIDDEN_REFERENCES=str(HIDDEN_REFERENCES),
                   VAELAB_CACHE=os.environ.get("VAELAB_CACHE", str(Path(tmp) / "cache")))
        env.pop("VAELAB_FULL_RUN", None)
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}})
        cells, start = {}, time.perf_counter()
        with client.setup_kernel(env=env):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                t0 = time.perf_counter()
                client.execute_cell(cell, index)
                cells[cell_key(cell)] = round(time.perf_counter() - t0, 3)
        return {"notebook_seconds": round(time.perf_counter() - start, 2), "cells": cells}


def record(names=None) -> dict:
    data = {"measured_on": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                            "cpus": os.cpu_count(), "python": platform.python_version()},
            "rule": {"cell_floor_s": CELL_FLOOR, "cell_factor": CELL_FACTOR,
                     "notebook_factor": NOTEBOOK_FACTOR, "notebook_slack_s": NOTEBOOK_SLACK},
            "assignments": {}}
    if BUDGETS_FILE.exists():
        data["assignments"] = json.loads(BUDGETS_FILE.read_text()).get("assignments", {})
    for name in names or assignments():
        data["assignments"][name] = measure(name)
        print(f"timed {name} under autograde: {data['assignments'][name]['notebook_seconds']:.1f} s")
    BUDGETS_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def load() -> dict:
    try:
        return json.loads(BUDGETS_FILE.read_text()).get("assignments", {})
    except (OSError, json.JSONDecodeError):
        return {}


def cell_budgets(assignment: str) -> dict:
    """``{cell key: timeout seconds}`` for one assignment's cells."""
    cap = cell_cap()
    cells = load().get(assignment, {}).get("cells", {})
    return {key: round(min(cap, max(CELL_FLOOR, CELL_FACTOR * seconds)), 1) for key, seconds in cells.items()}


def extra_cell_timeout() -> float:
    """Seconds for a cell the reference does not have (one the student added):
    ``VAELAB_EXTRA_CELL_TIMEOUT``, else CELL_FLOOR. Such a cell earns no points
    of its own; when it runs longer it is blanked and the rest is graded."""
    return min(cell_cap(), float(os.environ.get("VAELAB_EXTRA_CELL_TIMEOUT", CELL_FLOOR)))


def notebook_budget(assignment: str) -> float:
    """Seconds for one whole nbgrader run of the assignment. Without a
    measurement (or with ``VAELAB_AUTOGRADE_TIMEOUT`` set) the fixed limit."""
    fixed = os.environ.get("VAELAB_AUTOGRADE_TIMEOUT")
    if fixed:
        return float(fixed)
    seconds = load().get(assignment, {}).get("notebook_seconds")
    return NOTEBOOK_FACTOR * seconds + NOTEBOOK_SLACK if seconds else 900.0


if __name__ == "__main__":
    record(sys.argv[1:] or None)
