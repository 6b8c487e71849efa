"""Points and TODOs read from the released notebooks' nbgrader metadata, so no
test keeps a point total or a TODO list by hand.

nbgrader's own rules: a cell with ``grade: true`` carries ``points``. A graded
cell that is not a solution cell is an autograder test (``test-<todo>``): its
points are *autograded*. A graded cell that is also a solution cell (the proof
in 01, a written answer) is graded by hand. A code cell with ``solution: true``
and no ``grade`` is a TODO the student fills in: its grade_id is the TODO's name.

Every function raises ``PointsError`` with the notebook and the cell when the
metadata breaks the course's conventions (a TODO without its ``test-<todo>``
cell, a graded cell without points), so a test that uses them fails with that
message instead of comparing against a stale number.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import nbformat

from grader import RELEASE


class PointsError(AssertionError):
    """The nbgrader metadata of a released notebook breaks the conventions."""


def notebook_path(assignment: str, folder: Path | None = None) -> Path:
    return Path(folder or RELEASE) / assignment / f"{assignment}.ipynb"


@lru_cache(maxsize=None)
def _cells(path: Path) -> tuple:
    if not path.exists():
        raise PointsError(f"{path} does not exist: run `make release`")
    nb = nbformat.read(str(path), as_version=4)
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta:
            out.append((cell.cell_type, dict(meta)))
    return tuple(out)


def graded_cells(assignment: str, folder: Path | None = None) -> dict:
    """``{grade_id: (points, autograded)}`` of every graded cell, in notebook order."""
    path = notebook_path(assignment, folder)
    found = {}
    for _, meta in _cells(path):
        if not meta.get("grade"):
            continue
        grade_id = meta.get("grade_id")
        points = meta.get("points")
        if not grade_id or not isinstance(points, (int, float)) or isinstance(points, bool) or points < 0:
            raise PointsError(f"{path}: graded cell {grade_id!r} has no valid nbgrader `points` ({points!r})")
        found[grade_id] = (float(points), not meta.get("solution", False))
    if not found:
        raise PointsError(f"{path}: no graded cells")
    return found


def autograded_points(assignment: str, folder: Path | None = None) -> float:
    """The most an honest submission earns from the autograder: the points of
    every graded cell that is not graded by hand."""
    return sum(p for p, auto in graded_cells(assignment, folder).values() if auto)


def max_points(assignment: str, folder: Path | None = None) -> float:
    """The assignment's maximum score: every graded cell, hand-graded ones included."""
    return sum(p for p, _ in graded_cells(assignment, folder).values())


def todos(assignment: str, folder: Path | None = None) -> list:
    """The TODO names (grade_ids of the code solution cells), in notebook order.
    Each must have its ``test-<todo>`` cell with points."""
    path = notebook_path(assignment, folder)
    names = [meta["grade_id"] for kind, meta in _cells(path)
             if kind == "code" and meta.get("solution") and not meta.get("grade") and meta.get("grade_id")]
    graded = graded_cells(assignment, folder)
    missing = [n for n in names if f"test-{n}" not in graded]
    if missing:
        raise PointsError(f"{path}: TODO(s) {missing} have no graded `test-<todo>` cell")
    return names


def todo_points(assignment: str, todo: str, folder: Path | None = None) -> float:
    """Points of the hidden test ``test-<todo>``: what a wrong answer to ``todo`` loses."""
    graded = graded_cells(assignment, folder)
    if f"test-{todo}" not in graded:
        raise PointsError(f"{notebook_path(assignment, folder)}: no graded cell test-{todo} "
                          f"(TODOs: {todos(assignment, folder)})")
    return graded[f"test-{todo}"][0]


def predictions(assignment: str, folder: Path | None = None) -> list:
    """The "predict, then run" TODOs (``predict_*``)."""
    return [t for t in todos(assignment, folder) if t.startswith("predict_")]


def fmt(points: float) -> str:
    """As grades.csv and the progress line write a score: ``6/9``, ``4.5/9``."""
    return f"{points:g}"
