"""Mutation testing through real ``nbgrader autograde``, for every assignment:
the solution filled into the released notebook scores full marks, the blank
release scores 0, and every catalogued mutant loses points and receives its
own hint in the feedback. Prints the mutation score.

The same batch carries hostile submissions (tests/hostile.py): a TODO that
never returns in every assignment, one that also ignores signals, forks or
daemonizes, and a notebook with two bad TODOs, all graded with the real
default limits. Each loses only its own TODO's points and leaves no process."""
import csv
import json
import os
import re
import subprocess

import pytest

from grader import SOLUTIONS, assignments
from grader.grade.batch import main as grade_main
from grader.author.mutants import catalogue
from grader.notebooks import defined_names, is_solution, make_submission, read

from . import hostile
from .points import autograded_points

pytestmark = pytest.mark.slow


def _rounds(mutants, solution: dict) -> list:
    """Group mutants into notebooks: never two of one TODO, nor of two TODOs one of which calls the other."""
    targets = {m.target for m in mutants}
    calls = {t: {u for u in targets if u != t and re.search(rf"\b{u}\b", solution.get(t, ""))} for t in targets}
    rounds: list = []
    for m in mutants:
        for chosen in rounds:
            if all(m.target != c.target and m.target not in calls[c.target] and c.target not in calls[m.target]
                   for c in chosen):
                chosen.append(m)
                break
        else:
            rounds.append([m])
    return rounds


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
        # One notebook carries mistakes in several TODOs at once: each TODO is graded by its own test
        # cell, so every mistake must still lose that cell's points and show its own hint, and the
        # batch is a third of one notebook per mutant. Two mistakes share a notebook only when
        # neither TODO calls the other (train_step calls negative_elbo: a wrong loss would change
        # train_step's verdict and hint).
        for r, chosen in enumerate(_rounds(catalogue(a), solution), 1):
            student = f"mutants-{r}"
            make_submission(a, {**solution, **{m.target: m.source for m in chosen}}, subs, student)
            expected[(a, student)] = chosen
    for (a, student), (answers, _) in hostile.submissions().items():
        make_submission(a, answers, subs, student)
    for name in ("VAELAB_CELL_TIMEOUT", "VAELAB_AUTOGRADE_TIMEOUT", "VAELAB_MEMORY_CAP_MB"):
        assert name not in os.environ, f"{name} is set: this batch must run with the default limits"
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
    # the gradebook's autograded maximum is the released notebook's (tests/points.py), and the solution earns it
    assert _autograded_max(out, assignment) == autograded_points(assignment) > 0, assignment
    assert scores[(assignment, "solution")][0] == autograded_points(assignment)
    assert scores[(assignment, "blank")][0] == 0


def _cell_score(out, assignment, student, cell):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        grade = gb.find_grade(cell, assignment, assignment, student)
        return grade.score, grade.max_score


def test_every_mutant_loses_its_todos_points_with_its_own_hint(graded):
    out, scores, expected = graded
    caught, missed, total = 0, [], 0
    for (a, student), chosen in expected.items():
        html = (out / "feedback" / student / a / f"{a}.html").read_text()
        text = re.sub(r"<[^>]+>", "", html).replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&")
        for m in chosen:
            total += 1
            score, max_score = _cell_score(out, a, student, f"test-{m.target}")
            if score < max_score and m.hint in text:
                caught += 1
            else:
                missed.append(f"{a}:{m.target}:{m.name} scored {score}/{max_score} on test-{m.target}")
    print(f"\nmutation score: {caught}/{total} mutants caught with their hint")
    assert total == sum(len(catalogue(a)) for a in assignments())
    assert not missed, missed


def _points(out, assignment, cell):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        return gb.find_grade_cell(cell, assignment, assignment).max_score


@pytest.mark.parametrize("key", list(hostile.submissions()), ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_todo_that_never_returns_costs_only_its_own_points(graded, key):
    out, scores, _ = graded
    assignment, student = key
    _, bad = hostile.submissions()[key]
    lost = sum(_points(out, assignment, f"test-{todo}") for todo in bad)
    assert scores[key][0] == scores[(assignment, "solution")][0] - lost > 0
    feedback = re.sub(r"<[^>]+>", "", (out / "feedback" / student / assignment / f"{assignment}.html").read_text())
    feedback = feedback.replace("&#39;", "'")
    for todo in bad:
        assert f"Your cell '{todo}' was stopped because" in feedback  # grader/grade/attempt.py's note on a blanked TODO
    assert "time limit" in feedback or "stopped the grading kernel" in feedback
    done = json.loads((out / "done" / f"{student}__{assignment}.json").read_text())
    honest = json.loads((out / "done" / f"solution__{assignment}.json").read_text())
    print(f"\n{assignment}/{student}: {done['seconds']:.1f} s vs {honest['seconds']:.1f} s honest "
          f"({done['seconds'] / honest['seconds']:.2f}x)")


def test_no_grading_process_survives_the_batch(graded):
    out, _, _ = graded
    listing = subprocess.run(["ps", "-ewwo", "pid=,args="], capture_output=True, text=True).stdout
    left = [line for line in listing.splitlines()
            if ("kernel_launcher.py" in line or "ipykernel_launcher" in line or "nbgrader" in line
                or "supervise.py" in line or str(out) in line) and "ps -ewwo" not in line and "pytest" not in line]
    assert left == []
