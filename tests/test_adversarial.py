"""Issue: hostile or broken submissions must never break the batch or earn
points they did not earn. Twenty-seven of them are graded in one batch with two
jobs (nbgrader and kernels forked from grader/sandbox/zygote.py); `make test-full` grades
them again serially with the plain start, and both runs must agree exactly."""
import csv
import os
import re
import shutil
from pathlib import Path

import pytest

from grader.grade.batch import main as grade_main

from .adversarial import A, CANARY, FULL, JUDGE_MARKER, KL, PLANTED, PLANTED_PTH, STARTUP, build

pytestmark = pytest.mark.slow


def _read(out):
    scores = {}
    with open(out / "grades.csv") as fh:
        for row in csv.DictReader(fh):
            if row["assignment"] == A:
                scores[row["student_id"]] = float(row["score"])
    problems = {}
    for row in csv.reader(open(out / "report.csv")):
        if row[0] == "problem":
            problems[row[2]] = row[3]
    return scores, problems


def _feedback(out, student):
    path = out / "feedback" / student / A / f"{A}.html"
    return re.sub(r"<[^>]+>", "", path.read_text()) if path.exists() else ""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    expectations = build(base / "subs")
    # issue 29: a copy of the answers elsewhere on the machine, a canary among the grader's variables
    import grader

    Path(PLANTED).parent.mkdir(parents=True, exist_ok=True)
    Path(PLANTED).write_bytes((grader.HIDDEN_REFERENCES / f"{A}.pt").read_bytes())
    Path(JUDGE_MARKER).unlink(missing_ok=True)
    import vaelab

    drivers = Path(vaelab.__file__).with_name("drivers.py")
    before = drivers.read_bytes()
    runs = []
    # CI grades the batch once, with two jobs; `make test-full` adds the serial repeat and compares them
    for jobs in ((1, 2) if os.environ.get("VAELAB_TEST_FULL") else (2,)):
        out = base / f"out-jobs{jobs}"
        # the real default limits: per-cell budgets from the reference run, 120 s cap, 3 GB
        for name in ("VAELAB_CELL_TIMEOUT", "VAELAB_AUTOGRADE_TIMEOUT", "VAELAB_MEMORY_CAP_MB"):
            assert name not in os.environ, f"{name} is set: this batch must run with the default limits"
        with pytest.MonkeyPatch.context() as patch:
            if jobs == 1:  # the serial repeat starts nbgrader and kernels the plain way: the two paths must agree
                patch.setenv("VAELAB_ZYGOTE", "off")
            patch.setenv(CANARY, "postgresql://grader:hunter2@db/course")
            assert grade_main([str(base / "subs"), "--out", str(out), "--assignment", A, "--jobs", str(jobs)]) == 0
        runs.append((out, *_read(out)))
    shutil.rmtree(Path(PLANTED).parents[2], ignore_errors=True)
    assert drivers.read_bytes() == before, "a kernel changed vaelab/drivers.py"
    return expectations, runs


def test_no_student_code_ran_outside_its_sandbox(two_runs):
    """Issue 29: the judge ran no recorded string, and no kernel wrote the
    Python environment, the vaelab package or a startup file."""
    import site

    expectations, runs = two_runs
    assert not Path(JUDGE_MARKER).exists()
    assert not any(Path(p, PLANTED_PTH).exists() for p in site.getsitepackages())
    assert not Path(STARTUP).exists()
    for out, scores, _ in runs:  # each earns exactly its honest part: the most adversarial.py allows
        for name in ("sympy_string_for_the_judge", "read_planted_answers_and_canary",
                     "write_the_grader_and_other_kernels"):
            assert scores[name] == expectations[name][0], (name, scores[name])
        assert "returned a string" in _feedback(out, "sympy_string_for_the_judge")


def test_there_are_at_least_twenty_hostile_cases(two_runs):
    expectations, _ = two_runs
    assert len([n for n in expectations if not n.startswith("control")]) >= 20


def test_no_submission_earns_more_than_it_should(two_runs):
    expectations, runs = two_runs
    for out, scores, problems in runs:
        for name, (max_score, _) in expectations.items():
            assert scores.get(name, 0.0) <= max_score, (name, scores.get(name))


def test_crashes_cost_only_their_own_points(two_runs):
    _, runs = two_runs
    for out, scores, _ in runs:
        for name in ("infinite_loop", "memory_bomb", "os_exit", "sys_exit", "syntax_error", "kill_kernel",
                     "nan_result", "wrong_shape", "wrong_dtype"):
            assert scores.get(name) == FULL - KL, (name, scores.get(name), f"expected {FULL} - {KL}")
        assert scores["huge_output"] == FULL and scores["network_access"] == FULL, (FULL, scores)


def test_answers_stay_out_of_reach_of_student_code(two_runs):
    """Obfuscated stack walks and file reads evade the static scan (they are
    not flagged) and still find no answers: sealed grading keeps them out of the kernel."""
    expectations, runs = two_runs
    for out, scores, problems in runs:
        for name in ("stack_walk_for_answers", "obfuscated_reference_read", "steal_public_expression",
                     "steal_public_expression_raw"):
            # exactly the honest part: every TODO but the one whose answers it tried to steal
            assert scores[name] == expectations[name][0] < FULL, (name, scores[name], expectations[name][0])
            assert "Integrity" not in _feedback(out, name)


def test_correct_submissions_in_the_same_batch_keep_full_marks(two_runs):
    _, runs = two_runs
    for _, scores, _ in runs:
        assert scores["control_a"] == scores["control_b"] == FULL, (scores["control_a"], scores["control_b"], FULL)


def test_every_case_gets_a_clear_message(two_runs):
    expectations, runs = two_runs
    out, scores, problems = runs[0]
    for name, (_, needle) in expectations.items():
        if not needle:
            continue
        text = problems.get(name, "") + _feedback(out, name)
        assert needle in text, f"{name}: expected {needle!r} in its message"


def test_both_runs_agree_exactly(two_runs):
    _, runs = two_runs
    if len(runs) < 2:
        pytest.skip("the serial repeat runs in `make test-full` (VAELAB_TEST_FULL=1)")
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]


def test_network_is_isolated_where_the_os_allows(two_runs):
    from grader.sandbox.limits import network_isolation

    if not network_isolation():
        pytest.skip("unshare --net is not available on this machine")
    out = two_runs[1][-1][0]
    assert "unreachable" in _feedback(out, "network_access").lower()
