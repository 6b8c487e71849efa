"""``make grade``: autograde a batch of submissions with nbgrader.

    python -m grader.grade SUBMISSIONS [--out build/grading] [--assignment 01_elbo]

SUBMISSIONS is either a folder in nbgrader's layout
(``<student>/<assignment>/<assignment>.ipynb``) or an LMS zip of notebooks
named ``<student>_..._<assignment>.ipynb``, which nbgrader's ``zip_collect``
sorts into that layout.

Steps, in order:
1. build a scratch course folder under --out with its own gradebook and the
   assignments generated from solutions/ (so hidden tests are known);
2. collect the submissions into ``submitted/``;
3. autograde each (student, assignment) in its own nbgrader process, so one
   broken notebook can never stop the batch; hidden tests read the hidden
   references through ``VAELAB_HIDDEN_REFERENCES``;
4. generate feedback HTML, export the grades CSV and write the class report.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader import HIDDEN_REFERENCES, ROOT, SOLUTIONS, assignments
from grader.nbgrader_api import CONFIG_FILE

# <student>_<anything>_<NN_name>.ipynb, as LMS bulk downloads name files.
DEFAULT_NAME_PATTERN = r".*/(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z_]+\.ipynb)$"
AUTOGRADE_TIMEOUT = int(os.environ.get("VAELAB_AUTOGRADE_TIMEOUT", "900"))


@dataclass
class Outcome:
    student: str
    assignment: str
    ok: bool
    seconds: float
    message: str = ""


def _nbgrader(args, cwd: Path, timeout: float | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def prepare_course(out: Path, names: list, db_url: str | None = None) -> None:
    """Scratch course folder: config, source notebooks, gradebook with the assignments."""
    out.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}"
    (out / "nbgrader_config.py").write_text(
        "# Written by grader/grade.py: the course configuration, rooted here.\n"
        f"load_subconfig({str(CONFIG_FILE)!r})\n"
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(out.resolve())!r}\n"
        f"c.CourseDirectory.db_url = {db_url!r}\n")
    if (out / "solutions").exists():
        shutil.rmtree(out / "solutions")
    shutil.copytree(SOLUTIONS, out / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pt", "data", "checkpoints"))
    for name in names:
        result = _nbgrader(["generate_assignment", name, "--force"], cwd=out)
        if result.returncode != 0:
            raise RuntimeError(f"generate_assignment {name} failed:\n{result.stderr[-2000:]}")


def collect(source: Path, out: Path, names: list, pattern: str) -> list:
    """Put submissions under out/submitted/<student>/<assignment>/ and return
    the (student, assignment) pairs found."""
    submitted = out / "submitted"
    if source.is_file() and zipfile.is_zipfile(source):
        for name in names:
            archive = out / "downloaded" / name / "archive"
            archive.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, archive / source.name)
            result = _nbgrader(["zip_collect", name, "--force",
                                f"--FileNameCollectorPlugin.named_regexp={pattern}"], cwd=out)
            if result.returncode != 0:
                print(f"zip_collect {name}: {result.stderr.strip().splitlines()[-1:]}")
    elif source.is_dir():
        for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
                if assignment_dir.name not in names:
                    print(f"skipped {student_dir.name}/{assignment_dir.name}: not an assignment of this course")
                    continue
                dest = submitted / student_dir.name / assignment_dir.name
                if dest.exists():
                    shutil.rmtree(dest)
                shutil.copytree(assignment_dir, dest)
    else:
        raise SystemExit(f"{source}: not a folder or a zip file")
    pairs = []
    if submitted.exists():
        for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
            for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
                if assignment_dir.name in names:
                    pairs.append((student_dir.name, assignment_dir.name))
    return pairs


def autograde_one(out: Path, student: str, assignment: str) -> Outcome:
    env = dict(os.environ, VAELAB_HIDDEN_REFERENCES=str(HIDDEN_REFERENCES), PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    try:
        result = _nbgrader(["autograde", assignment, f"--student={student}", "--create", "--force"],
                           cwd=out, timeout=AUTOGRADE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return Outcome(student, assignment, False, time.perf_counter() - start,
                       f"autograde exceeded {AUTOGRADE_TIMEOUT} s and was stopped")
    seconds = time.perf_counter() - start
    log = (result.stdout + result.stderr).strip().splitlines()
    errors = [line for line in log if "[ERROR]" in line or "[WARNING]" in line and "Timeout" in line]
    return Outcome(student, assignment, result.returncode == 0, seconds,
                   "" if result.returncode == 0 else (errors[-1] if errors else (log[-1] if log else "failed")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde submissions; write feedback HTML and grades CSV.")
    parser.add_argument("submissions", type=Path, help="folder <student>/<assignment>/*.ipynb, or an LMS zip")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grading")
    parser.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at a time")
    parser.add_argument("--name-pattern", default=DEFAULT_NAME_PATTERN, help="regexp for LMS zip file names")
    parser.add_argument("--db-url", default=None, help="gradebook URL (default: SQLite in --out)")
    args = parser.parse_args(argv)

    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    names = args.assignment or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; choose from {assignments()}")
    out = args.out.resolve()
    print(f"Preparing course folder {out}")
    prepare_course(out, names, args.db_url)
    pairs = collect(args.submissions.resolve(), out, names, args.name_pattern)
    if not pairs:
        print("No submissions found. Expected <student>/<assignment>/<assignment>.ipynb or an LMS zip.")
        return 1

    from vaelab.runtime import progress

    outcomes = []
    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(autograde_one, out, s, a) for s, a in pairs]
            for future in progress(futures, desc="autograding", unit="notebook"):
                outcomes.append(future.result())
    else:
        for student, assignment in progress(pairs, desc="autograding", unit="notebook"):
            outcomes.append(autograde_one(out, student, assignment))

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

    report = write_report(out, outcomes)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"  ! {o.student}/{o.assignment}: {o.message}")
    print(f"\nGraded {len(outcomes)} notebook(s) in {sum(o.seconds for o in outcomes):.1f} s "
          f"({len(failed)} with problems).")
    print(f"  grades CSV:   {csv_path}")
    print(f"  feedback:     {out / 'feedback'}/<student>/<assignment>/*.html")
    print(f"  class report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
