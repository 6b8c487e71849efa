"""``make grade``: autograde a batch of submissions with nbgrader.

    python -m grader.grade SUBMISSIONS [--out build/grading] [--assignment 01_elbo] [--jobs N]

SUBMISSIONS is a folder in nbgrader's layout
(``<student>/<assignment>/<assignment>.ipynb``) or an LMS zip of notebooks
named ``<student>_..._<assignment>.ipynb`` (sorted by nbgrader's zip_collect).

Steps, in order:
1. prepare the course folder under --out: the source notebooks, a *template*
   gradebook holding the generated assignments, and the course gradebook;
2. collect and check the submissions (missing, empty or corrupt notebooks and
   notebooks for another assignment are reported, never fatal);
3. grade each (student, assignment) in its own worker folder with a private
   copy of the template gradebook, in a separate, resource-limited process
   (grader/sandbox.py) whose kernel is sealed (grader/seal.py): it sees the
   hidden inputs but not the answers, and the hidden tests' verdicts are
   decided afterwards in the grader's own process; JOBS workers run at once.
   A notebook that kills its kernel is regraded with the offending TODO cell
   blanked, so it only costs the points that depended on that cell;
4. merge each finished worker into the course gradebook (one writer, so no
   SQLite contention) and mark it done, so an interrupted batch resumes where
   it stopped;
5. write feedback HTML, the grades CSV and the class report.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from grader import ROOT, SOLUTIONS, assignments, sandbox, seal
from grader.nbgrader_api import CONFIG_FILE, api_for

# <student>_<anything>_<NN_name>.ipynb, as LMS bulk downloads name files.
DEFAULT_NAME_PATTERN = r".*/(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z_]+\.ipynb)$"
AUTOGRADE_TIMEOUT = int(os.environ.get("VAELAB_AUTOGRADE_TIMEOUT", "900"))
THREADS_PER_JOB = os.cpu_count() or 1  # set from --jobs in main(): cores are shared, not oversubscribed


@dataclass
class Outcome:
    student: str
    assignment: str
    ok: bool
    seconds: float
    message: str = ""
    digest: str = ""


def _nbgrader(args, cwd: Path, timeout: float | None = None, env=None, limited=False):
    command = [sys.executable, "-m", "nbgrader", *args]
    if limited:
        if _STOP.is_set():
            raise KeyboardInterrupt("the batch was interrupted")
        command = sandbox.wrap(command)
    # A session of its own, so a timeout ends the kernel too, not just nbgrader.
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        _LIVE.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            _LIVE.discard(proc)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _config(root: Path, db_url: str) -> str:
    return ("# Written by grader/grade.py: the course configuration, rooted here.\n"
            f"load_subconfig({str(CONFIG_FILE)!r})\n"
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(root.resolve())!r}\n"
            f"c.CourseDirectory.db_url = {db_url!r}\n")


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def prepare_course(out: Path, names: list, db_url: str | None = None) -> str:
    """Course folder with sources, a template gradebook and the course gradebook; returns its URL."""
    out.mkdir(parents=True, exist_ok=True)
    main_url = db_url or _sqlite(out / "gradebook.db")
    (out / "nbgrader_config.py").write_text(_config(out, main_url))
    if (out / "solutions").exists():
        shutil.rmtree(out / "solutions")
    shutil.copytree(SOLUTIONS, out / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pt", "data", "checkpoints"))
    template = out / "template"
    if template.exists():
        shutil.rmtree(template)
    template.mkdir()
    (template / "solutions").symlink_to(out / "solutions")
    api = api_for(template, _sqlite(template / "gradebook.db"))
    for name in names:
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"generate_assignment {name} failed:\n{result.get('error', '')}")
    if db_url is None and not (out / "gradebook.db").exists():
        shutil.copy(template / "gradebook.db", out / "gradebook.db")
    elif db_url is not None:  # e.g. PostgreSQL: create the assignments there too
        api = api_for(out, main_url)
        for name in names:
            if not api.generate_assignment(name, force=True, create=True)["success"]:
                raise RuntimeError(f"could not register {name} in {main_url}")
    return main_url


# ---------------------------------------------------------------- collecting
def collect(source: Path, out: Path, names: list, pattern: str) -> tuple[list, list]:
    """Put submissions under out/submitted/; return (pairs to grade, problems)."""
    submitted, problems = out / "submitted", []
    if source.is_file() and zipfile.is_zipfile(source):
        for name in names:
            archive = out / "downloaded" / name / "archive"
            archive.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, archive / source.name)
            result = _nbgrader(["zip_collect", name, "--force",
                                f"--FileNameCollectorPlugin.named_regexp={pattern}"], cwd=out)
            if result.returncode != 0:
                problems.append(Outcome("-", name, False, 0.0, "zip_collect failed: " +
                                        " ".join(result.stderr.strip().splitlines()[-1:])))
    elif source.is_dir():
        for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
                if assignment_dir.name not in names:
                    problems.append(Outcome(student_dir.name, assignment_dir.name, False, 0.0,
                                            "not an assignment of this course; skipped"))
                    continue
                dest = submitted / student_dir.name / assignment_dir.name
                if dest.exists():
                    shutil.rmtree(dest)
                shutil.copytree(assignment_dir, dest)
    else:
        raise SystemExit(f"{source}: not a folder or a zip file")
    pairs = []
    for student_dir in sorted(p for p in submitted.glob("*") if p.is_dir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and p.name in names):
            problem = check_notebook(assignment_dir, assignment_dir.name)
            if problem:
                problems.append(Outcome(student_dir.name, assignment_dir.name, False, 0.0, problem))
            else:
                pairs.append((student_dir.name, assignment_dir.name))
    return pairs, problems


def check_notebook(folder: Path, assignment: str) -> str:
    """Why a submitted folder cannot be graded ('' if it can)."""
    path = folder / f"{assignment}.ipynb"
    if not path.exists():
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        if others:
            return f"expected {path.name}, found {', '.join(others)} (a notebook for another assignment?): 0 points"
        return f"no {path.name} in the submission: 0 points"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:  # corrupt JSON, not a notebook at all, ...
        return f"{path.name} is not a readable notebook ({type(err).__name__}: {str(err)[:80]}): 0 points"
    if not nb.cells:
        return f"{path.name} has no cells: 0 points"
    return ""


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------- workers
_LIVE: set = set()  # worker processes, ended if the batch is interrupted
_STOP = threading.Event()  # set on Ctrl-C: no new worker starts
_ATTEMPTS = itertools.count()


def _new_worker_dir(out: Path, student: str, assignment: str) -> Path:
    """A fresh folder per attempt, so a worker orphaned by a killed batch can
    never collide with the batch that resumes it."""
    return out / "work" / f"{student}__{assignment}.{os.getpid()}.{next(_ATTEMPTS)}"


def _stage(out: Path, student: str, assignment: str, blank_cells=()) -> Path:
    work = _new_worker_dir(out, student, assignment)
    (work / "submitted" / student).mkdir(parents=True)
    (work / "solutions").symlink_to(out / "solutions")
    shutil.copy(out / "template" / "gradebook.db", work / "gradebook.db")
    (work / "nbgrader_config.py").write_text(_config(work, _sqlite(work / "gradebook.db")))
    dest = work / "submitted" / student / assignment
    shutil.copytree(out / "submitted" / student / assignment, dest)
    path = dest / f"{assignment}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    seen, kept = set(), []
    for cell in nb.cells:  # a duplicated locked cell would make nbgrader reject the whole notebook
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id and grade_id in seen:
            continue
        seen.add(grade_id)
        kept.append(cell)
    nb.cells = kept
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in blank_cells:
            cell.source = "raise NotImplementedError('this cell stopped the grader, so it was not run')"
    guard = nbformat.v4.new_code_cell(sandbox.GUARD_CELL)
    guard.metadata["tags"] = ["grader-guard"]
    nb.cells.insert(0, guard)
    nbformat.write(nb, str(path))
    return work


def _run_worker(out: Path, student: str, assignment: str, blank_cells=()) -> tuple[bool, str, Path]:
    """One nbgrader autograde attempt. The kernel it starts is sealed
    (grader/seal.py): its own home and user, hidden inputs but no answers."""
    work = _stage(out, student, assignment, blank_cells)
    kernel_env = seal.prepare(work, assignment)
    env = {k: v for k, v in os.environ.items() if k not in ("VAELAB_HIDDEN_REFERENCES", "VAELAB_SEALED_RESULTS")}
    env.update(kernel_env, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", VAELAB_CACHE=str(work / "cache"),
               OMP_NUM_THREADS=str(THREADS_PER_JOB), MKL_NUM_THREADS=str(THREADS_PER_JOB))
    try:
        result = _nbgrader(["autograde", assignment, f"--student={student}", "--create", "--force"],
                           cwd=work, timeout=AUTOGRADE_TIMEOUT, env=env, limited=True)
    except subprocess.TimeoutExpired:
        return False, f"grading exceeded {AUTOGRADE_TIMEOUT} s", work
    graded = work / "autograded" / student / assignment / f"{assignment}.ipynb"
    if result.returncode == 0 and graded.exists():
        return True, "", work
    log = (result.stdout + result.stderr).strip().splitlines()
    reason = next((line.strip() for line in reversed(log) if "Kernel died" in line or "DeadKernel" in line), "")
    return False, reason or (log[-1][:200] if log else f"nbgrader exited with {result.returncode}"), work


def _discard(work: Path) -> None:
    seal.remove_home(work)
    shutil.rmtree(work, ignore_errors=True)


def _todo_cells(out: Path, assignment: str) -> list:
    nb = nbformat.read(str(out / "template" / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"]


def grade_one(out: Path, student: str, assignment: str) -> Outcome:
    from grader.gradebook import zero_and_flag
    from grader.integrity import scan_notebook

    start = time.perf_counter()
    digest = _digest(out / "submitted" / student / assignment)
    violations = scan_notebook(nbformat.read(str(out / "submitted" / student / assignment / f"{assignment}.ipynb"),
                                             as_version=4))
    ok, reason, work = _run_worker(out, student, assignment)
    message = ""
    if not ok:  # find the TODO cell that stops the grader; blank it and grade the rest
        for cell_id in _todo_cells(out, assignment):
            _discard(work)
            retry_ok, _, work = _run_worker(out, student, assignment, blank_cells=(cell_id,))
            if retry_ok:
                ok = True
                message = (f"Your cell '{cell_id}' stopped the grading kernel ({reason or 'crash'}); "
                           "it earned 0 points and everything else was graded.")
                _add_note(work, student, assignment, message)
                break
        else:
            message = f"could not be graded ({reason}): 0 points"
    if ok:  # the hidden tests' verdicts, decided outside the kernel
        verdicts = seal.judge(seal.home_of(work), assignment)
        seal.apply(_sqlite(work / "gradebook.db"), work / "autograded" / student / assignment / f"{assignment}.ipynb",
                   assignment, student, verdicts)
    if ok and violations:
        zero_and_flag(_sqlite(work / "gradebook.db"), assignment, student)
        message = ("Integrity check: your code tampers with the grading tools (" + "; ".join(violations[:3]) +
                   "). Autograded points are set to 0 and the notebook is flagged for the instructor.")
        _add_note(work, student, assignment, message)
    outcome = Outcome(student, assignment, ok, time.perf_counter() - start, message, digest)
    outcome.work = work  # not saved: where finish() picks the results up
    return outcome


def _add_note(work: Path, student: str, assignment: str, message: str) -> None:
    path = work / "autograded" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grader note.** {message}"))
    nbformat.write(nb, str(path))


def finish(out: Path, main_url: str, outcome: Outcome) -> None:
    """Merge a finished worker into the course gradebook and mark it done."""
    from grader.gradebook import merge

    s, a = outcome.student, outcome.assignment
    work = outcome.work
    if outcome.ok:
        merge(_sqlite(work / "gradebook.db"), main_url, a, s)
        dest = out / "autograded" / s / a
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(work / "autograded" / s / a, dest)
    done = out / "done" / f"{s}__{a}.json"
    done.parent.mkdir(exist_ok=True)
    done.write_text(json.dumps(asdict(outcome)))
    _discard(work)


def previously_done(out: Path, student: str, assignment: str) -> Outcome | None:
    done = out / "done" / f"{student}__{assignment}.json"
    if not done.exists():
        return None
    outcome = Outcome(**json.loads(done.read_text()))
    same = outcome.digest == _digest(out / "submitted" / student / assignment)
    return outcome if same and (outcome.ok or outcome.message) else None


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde submissions; write feedback HTML and grades CSV.")
    parser.add_argument("submissions", type=Path, help="folder <student>/<assignment>/*.ipynb, or an LMS zip")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grading")
    parser.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at a time")
    parser.add_argument("--name-pattern", default=DEFAULT_NAME_PATTERN, help="regexp for LMS zip file names")
    parser.add_argument("--db-url", default=None, help="course gradebook URL (default: SQLite in --out)")
    parser.add_argument("--regrade", action="store_true", help="grade again even what a previous run finished")
    args = parser.parse_args(argv)

    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    names = args.assignment or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; choose from {assignments()}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    global THREADS_PER_JOB
    THREADS_PER_JOB = max(1, (os.cpu_count() or 1) // args.jobs)
    seal.configure(args.jobs)
    out = args.out.resolve()
    print(f"Preparing course folder {out}")
    main_url = prepare_course(out, names, args.db_url)
    pairs, problems = collect(args.submissions.resolve(), out, names, args.name_pattern)
    # What grading kernels must not see: answers, solutions, other students' work.
    seal.hide([ROOT / "grader", SOLUTIONS, ROOT / "tests", ROOT / ".git", ROOT / "build", out,
               args.submissions.resolve()])
    limits = {**sandbox.describe(), **seal.describe()}
    print("Limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()))
    if not pairs and not problems:
        print("No submissions found. Expected <student>/<assignment>/<assignment>.ipynb or an LMS zip.")
        return 1

    from vaelab.runtime import progress

    outcomes, todo = [], []
    for student, assignment in pairs:
        earlier = None if args.regrade else previously_done(out, student, assignment)
        (outcomes.append(earlier) if earlier else todo.append((student, assignment)))
    if outcomes:
        print(f"Resuming: {len(outcomes)} notebook(s) were graded by an earlier run and are kept.")
    batch_start = time.perf_counter()
    pool = ThreadPoolExecutor(args.jobs)
    try:
        futures = [pool.submit(grade_one, out, s, a) for s, a in todo]
        for future in progress(as_completed(futures), total=len(futures), desc="autograding", unit="notebook"):
            outcome = future.result()
            finish(out, main_url, outcome)  # the only writer of the course gradebook
            outcomes.append(outcome)
    except KeyboardInterrupt:  # Ctrl-C: stop the workers; finished notebooks are kept for the next run
        _STOP.set()
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(_LIVE):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        seal.cleanup(kill=True)
        print(f"\nInterrupted: {len(outcomes)} notebook(s) finished and kept; run the same command to resume.")
        return 130
    pool.shutdown()
    seal.cleanup()
    batch_seconds = time.perf_counter() - batch_start
    (out / "batch.json").write_text(json.dumps({"jobs": args.jobs, "notebooks": len(todo), "seconds": batch_seconds}))

    for name in sorted({a for _, a in pairs}):
        result = _nbgrader(["generate_feedback", name, "--force"], cwd=out)
        if result.returncode != 0:
            print(f"generate_feedback {name} reported a problem: {result.stderr.strip().splitlines()[-1:]}")
    csv_path = out / "grades.csv"
    result = _nbgrader(["export", f"--to={csv_path}"], cwd=out)
    if result.returncode != 0:
        print(f"export failed: {result.stderr[-1000:]}")
        return 1

    from grader.report import write_report

    report = write_report(out, outcomes + problems, limits=limits)
    for o in [o for o in outcomes + problems if o.message]:
        print(f"  ! {o.student}/{o.assignment}: {o.message}")
    print(f"\nGraded {len(todo)} notebook(s) in {batch_seconds:.1f} s with {args.jobs} job(s); "
          f"{len(outcomes) - len(todo)} kept from an earlier run; {len(problems)} could not be graded.")
    print(f"  grades CSV:   {csv_path}")
    print(f"  feedback:     {out / 'feedback'}/<student>/<assignment>/*.html")
    print(f"  class report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
