"""Mutation testing through real ``nbgrader autograde``, for every assignment:
the solution filled into the released notebook scores full marks, the blank
release scores 0, and every catalogued mutant loses points and receives its
own hint in the feedback. Prints the mutation score."""
import csv
import re

import pytest

from grader import SOLUTIONS, assignments
from grader.grade import main as grade_main
from grader.mutants import catalogue
from grader.notebooks import defined_names, is_solution, make_submission, read

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("mutation")
    subs, out = base / "subs", base / "out"
    expected = {}
    for a in assignments():
        solution = {n: c.source for c in read(SOLUTIONS / a / f"{a}.ipynb").cells if is_solution(c)
                    for n in defined_names(c.source)}
        make_submission(a, solution, subs, "solution")
        make_submission(a, {}, subs, "blank")
        for m in catalogue(a):
            student = f"{m.target}.{m.name}".replace("_", "-")
            make_submission(a, {**solution, m.target: m.source}, subs, student)
            expected[(a, student)] = m
    assert grade_main([str(subs), "--out", str(out), "--jobs", "2"]) == 0
    scores = {}
    with open(out / "grades.csv") as fh:
        for row in csv.DictReader(fh):
            scores[(row["assignment"], row["student_id"])] = (float(row["score"]), float(row["max_score"]))
    return out, scores, expected


def _autograded_max(out, assignment):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        return sum(c.max_score for nb in gb.find_assignment(assignment).notebooks for c in nb.grade_cells
                   if not c.cell_type == "markdown")


@pytest.mark.parametrize("assignment", assignments())
def test_solution_full_marks_and_blank_zero(graded, assignment):
    out, scores, _ = graded
    assert scores[(assignment, "solution")][0] == _autograded_max(out, assignment) > 0
    assert scores[(assignment, "blank")][0] == 0


def test_every_mutant_loses_points_with_its_own_hint(graded):
    out, scores, expected = graded
    caught, missed = 0, []
    for (a, student), m in expected.items():
        full = _autograded_max(out, a)
        html = (out / "feedback" / student / a / f"{a}.html").read_text()
        text = re.sub(r"<[^>]+>", "", html).replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&")
        if scores[(a, student)][0] < full and m.hint in text:
            caught += 1
        else:
            missed.append(f"{a}:{m.target}:{m.name} scored {scores[(a, student)][0]}/{full}")
    print(f"\nmutation score: {caught}/{len(expected)} mutants caught with their hint")
    assert not missed, missed
