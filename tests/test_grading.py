"""Real ``nbgrader autograde`` on sample submissions, through ``make grade``'s
code path: scores, feedback hints, crash isolation and the LMS zip route."""
import csv
import json
import re
import zipfile

import nbformat
import pytest

from grader import RELEASE, SOLUTIONS, assignments
from grader.grade.batch import main as grade_main
from grader.author.mutants import catalogue
from grader.notebooks import DEMO_TAG, make_submission

from .points import autograded_points, fmt, graded_cells, max_points, todo_points, todos
from .samples import alternative as alternative_answers, raising, variant_todos

pytestmark = pytest.mark.slow
# Derived from the released notebook's nbgrader metadata (tests/points.py), never kept by hand:
# a new TODO or a changed point value moves them with it.
AUTOGRADED_POINTS = autograded_points("01_elbo")  # every hidden test; the proof is graded by hand
MAX_POINTS = max_points("01_elbo")  # the hidden tests and the proof


def _scores(out):
    with open(out / "grades.csv") as fh:
        return {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(fh)}


def _feedback_text(out, student):
    html = (out / "feedback" / student / "01_elbo" / "01_elbo.html").read_text()
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    subs, out = base / "submitted", base / "out"
    alternative = alternative_answers("01_elbo")
    half = next(m for m in catalogue("01_elbo") if m.target == "kl_standard_normal" and m.name == "missing_half")
    make_submission("01_elbo", alternative, subs, "alternative")
    make_submission("01_elbo", {}, subs, "blank")
    make_submission("01_elbo", {**alternative, half.target: half.source}, subs, "missing_half")
    make_submission("01_elbo", raising("01_elbo")[0], subs, "raises")
    # the same mistake, with every cell tagged as a demonstration (twice, which makes the notebook
    # invalid until the grader repairs it): grading reads which cells it may leave out from the
    # instructor's notebook, so the tags change nothing
    tagged = make_submission("01_elbo", {**alternative, half.target: half.source}, subs, "missing_half_tagged")
    nb = nbformat.read(str(tagged), as_version=4)
    for cell in nb.cells:
        cell.metadata["tags"] = cell.metadata.get("tags", []) + [DEMO_TAG, DEMO_TAG]
    tagged.write_text(json.dumps(nb))  # as an editor that does not validate would save it
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo"]) == 0
    return out, half


@pytest.mark.parametrize("assignment", assignments())
def test_sample_submissions_answer_every_todo(assignment):
    """The samples are built from the solution and the correct variants (tests/samples.py): they answer every
    TODO the released notebook has, each once, and differ from the solution wherever a variant exists."""
    from grader.notebooks import defined_names

    from .samples import _solution_sources

    expected = todos(assignment)
    assert expected, f"the released {assignment} notebook has no TODO cells"
    answers = alternative_answers(assignment)
    assert list(answers) == expected
    for name, source in answers.items():
        assert name in defined_names(source), f"the sample answer for {name} does not define it"
    solution = _solution_sources(assignment)
    assert all(answers[n].strip() != solution[n].strip() for n in variant_todos(assignment))
    broken, first = raising(assignment)
    assert first == expected[0] and broken[first].startswith("raise ") and broken[first] != answers[first]


def test_correct_but_different_solution_gets_full_autograded_points(graded):
    out, _ = graded
    score, maximum = _scores(out)["alternative"]
    assert maximum == MAX_POINTS, f"grades.csv says the maximum is {maximum}, the released notebook {MAX_POINTS}"
    assert score == AUTOGRADED_POINTS, (f"alternative.py earned {score} of the {AUTOGRADED_POINTS} autograded points "
                                        f"of the released notebook (TODOs: {todos('01_elbo')})")


def test_blank_release_scores_zero(graded):
    out, _ = graded
    assert _scores(out)["blank"][0] == 0


@pytest.mark.parametrize("student", ["missing_half", "missing_half_tagged"])
def test_missing_half_loses_points_with_a_helpful_message(graded, student):
    out, half = graded
    score, _ = _scores(out)[student]
    assert score == AUTOGRADED_POINTS - todo_points("01_elbo", half.target)
    assert half.hint in _feedback_text(out, student)


def test_demonstrations_and_self_checks_are_not_run_while_grading(graded):
    out, _ = graded
    source = nbformat.read(str(SOLUTIONS / "01_elbo" / "01_elbo.ipynb"), as_version=4)
    demos = sum(DEMO_TAG in c.metadata.get("tags", []) for c in source.cells)
    checks = sum(c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("check-") for c in source.cells)
    for student in ("alternative", "missing_half_tagged"):
        text = _feedback_text(out, student)
        assert text.count("Not run while grading: this cell is a demonstration") == demos
        assert text.count("Not run while grading: this is your self-check") == checks
        assert "public cases pass" not in text  # what a self-check prints when it runs


def test_a_raising_cell_does_not_cost_the_other_answers(graded):
    out, _ = graded
    lost = todo_points("01_elbo", raising("01_elbo")[1])
    assert _scores(out)["raises"][0] == AUTOGRADED_POINTS - lost


def test_class_report_is_written(graded):
    out, half = graded
    report = (out / "report.html").read_text()
    assert "Pass rate per autograded test" in report and "Manually graded answers" in report and (out / "grade_histogram.png").stat().st_size > 1000
    rows = list(csv.reader(open(out / "report.csv")))
    hint_rows = [r for r in rows if r[0] == "misconception"]
    assert any(r[2] == half.hint and r[3] == "2" for r in hint_rows)
    # nobody wrote the proof: it is counted as blank, apart from the autograded tests and the histogram
    assert ["manual_blank", "01_elbo", "proof-elbo-tight", "5", "5"] in rows
    assert not any(r[0] == "test_pass_rate" and r[2] == "proof-elbo-tight" for r in rows)
    assert all(status == "final (blank, 0 points: proof-elbo-tight)" for status in _status(out).values())



def test_lms_zip_is_collected_and_graded(tmp_path, monkeypatch, capsys):
    # This batch also keeps the plain start in CI: nbgrader and kernels started without the zygote.
    monkeypatch.setenv("VAELAB_ZYGOTE", "off")
    monkeypatch.setenv("VAELAB_RUN_DEMOS", "1")  # and every cell runs, as plain nbgrader would run it
    subs = tmp_path / "subs"
    path = make_submission("01_elbo", alternative_answers("01_elbo"), subs, "zoe")
    archive = tmp_path / "lms_download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, "zoe_1234_5678_01_elbo.ipynb")
    out = tmp_path / "out"
    assert grade_main([str(archive), "--out", str(out), "--assignment", "01_elbo"]) == 0
    # a Canvas download names <name>_<user id>_<attachment id>_<file>: graded under the user id
    assert _scores(out)["1234"][0] == AUTOGRADED_POINTS
    limits = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Limits:"))
    assert "started the plain way (zygote: switched off" in limits
    assert "not run=nothing (VAELAB_RUN_DEMOS=1)" in limits
    feedback = re.sub(r"<[^>]+>", "", (out / "feedback" / "1234" / "01_elbo" / "01_elbo.html").read_text())
    assert "Not run while grading" not in feedback and "public cases pass" in feedback  # the self-checks ran


def test_bad_input_is_refused_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit):
        grade_main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade_main([str(tmp_path), "--assignment", "99_nope", "--out", str(tmp_path / "o")])


def test_an_interrupted_batch_resumes_without_regrading_or_losing_work(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    subs, out = tmp_path / "subs", tmp_path / "out"
    good = alternative_answers("01_elbo")
    for name in ("ann", "bob", "cyd"):
        make_submission("01_elbo", good, subs, name)
    command = [sys.executable, "-m", "grader.grade", str(subs), "--out", str(out), "--assignment", "01_elbo"]
    # A terminal's Ctrl-C, even when this test runs in the background: a shell starts background jobs with
    # SIGINT ignored, children inherit that, and Python then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen(command, cwd=RELEASE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "done").glob("*.json"))) < 1:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C half-way through the batch
    assert proc.wait(timeout=60) == 130
    finished = {p.name for p in (out / "done").glob("*.json")}
    assert 1 <= len(finished) < 3
    again = subprocess.run(command, cwd=RELEASE.parent, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:]
    assert f"Resuming: {len(finished)} notebook(s)" in again.stdout
    assert f"Graded {3 - len(finished)} notebook(s)" in again.stdout
    # not a terminal: one progress line per finished notebook (student, assignment, score, seconds)
    score = re.escape(f"{fmt(AUTOGRADED_POINTS)}/{fmt(MAX_POINTS)}")
    lines = re.findall(rf"^\[(\d+)/3\] (\w+)/01_elbo: {score} in [\d.]+ s$", again.stdout, re.M)
    assert len(lines) == 3 - len(finished), again.stdout[-2000:]
    assert _scores(out) == {s: (AUTOGRADED_POINTS, MAX_POINTS) for s in ("ann", "bob", "cyd")}


PROOF = "proof-elbo-tight"


def _write_proof(path, text):
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PROOF]
    cell.source = text
    nbformat.write(nb, str(path))


def _mark(out, student, score, comment):
    """Mark the proof the way the formgrader's grade and comment handlers do."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        grade = gb.find_grade(PROOF, "01_elbo", "01_elbo", student)
        grade.manual_score, grade.needs_manual_grade = score, False
        gb.find_comment(PROOF, "01_elbo", "01_elbo", student).manual_comment = comment
        gb.db.commit()


def _proof_row(out, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        grade = gb.find_grade(PROOF, "01_elbo", "01_elbo", student)
        comment = gb.find_comment(PROOF, "01_elbo", "01_elbo", student)
        return grade.manual_score, grade.needs_manual_grade, comment.manual_comment


def _status(out):
    with open(out / "grades.csv") as fh:
        return {row["student_id"]: row["status"] for row in csv.DictReader(fh)}


def test_manual_marks_survive_a_regrade_and_a_changed_answer_is_flagged(tmp_path, capsys):
    """A written proof is 'pending' until marked; REGRADE keeps the mark and
    the comment of an unchanged answer; a resubmission whose proof changed
    loses that mark, with a warning naming student and cell, and is pending again."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    good = alternative_answers("01_elbo")
    for student in ("ann", "bob"):
        _write_proof(make_submission("01_elbo", good, subs, student), f"KL ≥ 0 by Gibbs' inequality ({student}).")
        # both hand in 30 hours after the due date; ann has a 48-hour extension
        (subs / student / "01_elbo" / "timestamp.txt").write_text("2026-10-07 05:59:00.000000 UTC")
    course = tmp_path / "course.toml"
    course.write_text('[late_policy]\nunit = "day"\npenalty_percent = 10\ncap_percent = 50\n'
                      '[due]\n"01_elbo" = 2026-10-05T23:59:00Z\n[extensions]\nann = { "01_elbo" = 48 }\n')
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo", "--course", str(course)]) == 0
    assert _status(out) == {s: f"pending manual grade: {PROOF}" for s in ("ann", "bob")}
    report = list(csv.reader(open(out / "report.csv")))
    assert ["manual_pending", "01_elbo", PROOF, "2", "2"] in report
    assert not any(r[0] == "test_pass_rate" and r[2] == PROOF for r in report)  # not an autograded test

    _mark(out, "ann", 2.0, "Good; the equality case is missing.")
    _mark(out, "bob", graded_cells("01_elbo")[PROOF][0], "Complete.")  # full marks for the proof
    _write_proof(subs / "bob" / "01_elbo" / "01_elbo.ipynb", "A new proof, written after the first marking.")
    capsys.readouterr()
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo", "--regrade",
                       "--course", str(course)]) == 0
    printed = capsys.readouterr().out
    assert _proof_row(out, "ann") == (2.0, False, "Good; the equality case is missing.")
    assert _proof_row(out, "bob")[0] is None and _proof_row(out, "bob")[1] is True
    assert f"bob/01_elbo: the answer in '{PROOF}' changed since it was marked" in printed
    assert "! ann/01_elbo" not in printed
    assert _scores(out)["ann"] == (AUTOGRADED_POINTS + 2.0, MAX_POINTS)  # on time within her extension
    # bob: 30 hours late is 2 started days, 10% of the maximum each; nbgrader's own columns carry it
    bob = next(r for r in csv.DictReader(open(out / "grades.csv")) if r["student_id"] == "bob")
    assert float(bob["late_submission_penalty"]) == pytest.approx(0.2 * MAX_POINTS)
    assert float(bob["score"]) == pytest.approx(float(bob["raw_score"]) - 0.2 * MAX_POINTS)
    assert "2 days late" in _feedback_text(out, "bob") and "after the due date" not in _feedback_text(out, "ann")
    late_rows = [r for r in csv.reader(open(out / "report.csv")) if r[0] == "late_penalty"]
    assert [r[2] for r in late_rows] == ["bob"]
    assert _status(out) == {"ann": "final", "bob": f"pending manual grade: {PROOF}"}
    feedback = _feedback_text(out, "ann")
    assert "Good; the equality case is missing." in feedback
