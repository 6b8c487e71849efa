"""``make grade``: autograde a batch of submissions with nbgrader.

    python -m grader.grade SUBMISSIONS [--out build/grading] [--assignment 01_elbo] [--jobs N]

SUBMISSIONS is a folder in nbgrader's layout
(``<student>/<assignment>/<assignment>.ipynb``) or an LMS zip of notebooks
named ``<student>_..._<assignment>.ipynb``, read entry by entry
(grader/grade/intake.py: no symbolic link is followed, no bad entry stops the batch).

Steps, in order:
1. prepare the course folder under --out: the source notebooks, a *template*
   gradebook holding the generated assignments, and the course gradebook;
2. collect and check the submissions (missing, empty or corrupt notebooks and
   notebooks for another assignment are reported, never fatal);
3. grade each (student, assignment) in its own worker folder with a private
   copy of the template gradebook, in a separate, resource-limited process
   (grader/sandbox/limits.py) whose kernel is sealed (grader/grade/seal.py): it sees the
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
import json
import os
import shutil
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import nbformat

from grader import ROOT, SOLUTIONS, assignments
from grader.grade import attempt, seal
from grader.gradebook import origins  # noqa: F401 (the tests read a batch's origins here)
from grader.nbgrader_api import api_for
from grader.sandbox import limits as sandbox
from grader.grade.attempt import (COLLECTION_NOTES, STOP, Outcome, add_note, worker_config_text, discard, grade_one,
                                  run_nbgrader, score, sqlite_url, stop_workers, submission_digest)

# <student>_<anything>_<NN_name>.ipynb, as LMS bulk downloads name files.
DEFAULT_NAME_PATTERN = r".*/(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z_]+\.ipynb)$"
COURSE_FILE = ROOT / "grader" / "course.toml"


def progress_line(outcome: Outcome, done: int, total: int) -> str:
    score = (f"{outcome.score:g}/{outcome.max_score:g}" if outcome.score is not None and outcome.max_score
             else "not graded")
    note = f" ({outcome.message[:100]})" if outcome.message else ""
    return f"[{done}/{total}] {outcome.student}/{outcome.assignment}: {score} in {outcome.seconds:.1f} s{note}"


def prepare_course(out: Path, names: list, db_url: str | None = None) -> str:
    """Course folder with sources, a template gradebook and the course gradebook; returns its URL."""
    out.mkdir(parents=True, exist_ok=True)
    main_url = db_url or sqlite_url(out / "gradebook.db")
    (out / "nbgrader_config.py").write_text(worker_config_text(out, main_url))
    if (out / "solutions").exists():
        shutil.rmtree(out / "solutions")
    shutil.copytree(SOLUTIONS, out / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pt", "data", "checkpoints"))
    template = out / "template"
    if template.exists():
        shutil.rmtree(template)
    template.mkdir()
    (template / "solutions").symlink_to(out / "solutions")
    api = api_for(template, sqlite_url(template / "gradebook.db"))
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
def collect(source: Path, out: Path, names: list, pattern: str, lms_layout: str = "auto") -> tuple[list, list]:
    """Put submissions under out/submitted/ (grader/grade/intake.py: regular files
    only, LMS zips entry by entry); return (pairs to grade, problems). A bad
    file or entry is reported and skipped; it never stops the batch."""
    from grader.grade import intake

    submitted, problems = out / "submitted", []
    limits = intake.Limits.from_env()
    notes: dict = {}  # (student, assignment) -> sentences about files left out, for the feedback
    if source.is_file() and zipfile.is_zipfile(source):
        try:
            result = intake.read_zip(source, names, pattern, submitted, limits, lms_layout)
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            problems.append(Outcome("-", "-", False, 0.0, f"{source.name}: {err}"))
            result = intake.ZipResult()
        for bad in result.rejected:
            problems.append(Outcome(bad.student, bad.assignment, False, 0.0,
                                    f"zip entry '{bad.entry[:120]}' was not graded: {bad.why}"))
        for student, assignment, kept, others, rule in result.duplicates:
            note = (f"the zip holds {len(others) + 1} different notebooks for this assignment; {rule}, "
                    f"'{kept}', was graded (not {', '.join(repr(o) for o in others)})")
            notes.setdefault((student, assignment), []).append(note)
        _record_origin(out, source, result.collected)
    elif source.is_dir():
        student_dirs, skipped = intake.plain_dirs(source)
        problems += [Outcome("-", "-", False, 0.0, f"{source.name}/: {note}") for note in skipped]
        for student_dir in student_dirs:
            assignment_dirs, skipped = intake.plain_dirs(student_dir)
            problems += [Outcome(student_dir.name, "-", False, 0.0, note) for note in skipped]
            for assignment_dir in assignment_dirs:
                if assignment_dir.name not in names:
                    problems.append(Outcome(student_dir.name, assignment_dir.name, False, 0.0,
                                            "not an assignment of this course; skipped"))
                    continue
                dest = submitted / student_dir.name / assignment_dir.name
                if dest.exists():
                    shutil.rmtree(dest)
                left_out = intake.copy_submission(assignment_dir, dest, limits)
                if left_out:
                    notes[(student_dir.name, assignment_dir.name)] = left_out
    else:
        raise SystemExit(f"{source}: not a folder or a zip file")
    pairs = []
    for student_dir in sorted(p for p in submitted.glob("*") if p.is_dir() and not p.is_symlink()):
        for assignment_dir in sorted(p for p in student_dir.iterdir()
                                     if p.is_dir() and not p.is_symlink() and p.name in names):
            key = (student_dir.name, assignment_dir.name)
            left_out = notes.get(key, [])
            problem = check_notebook(assignment_dir, assignment_dir.name, limits)
            if problem:
                problems.append(Outcome(*key, False, 0.0, problem + _left_out(left_out)))
            else:
                pairs.append(key)
                _write_collection_notes(out, *key, left_out)
    return pairs, problems


def _left_out(notes: list) -> str:
    return (" (Also: " + "; ".join(notes[:5]) + (f"; and {len(notes) - 5} more" if len(notes) > 5 else "") + ".)"
            if notes else "")


def _write_collection_notes(out: Path, student: str, assignment: str, notes: list) -> None:
    """What collection left out of one submission, kept beside (not in) it so
    the grade step can put it at the top of the student's feedback."""
    path = out / COLLECTION_NOTES / f"{student}__{assignment}.json"
    if notes:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(notes))
    elif path.exists():
        path.unlink()


def _record_origin(out: Path, archive: Path, collected: dict) -> None:
    """Which zip entry each submission came from, with the LMS's own ids
    (grader/lms.py), merged into out/collected.json: the feedback bundle
    answers with them and the late step reads Canvas's LATE mark from them."""
    path = out / "collected.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    for (student, assignment), (_, origin) in collected.items():
        known[f"{student}/{assignment}"] = {"zip": archive.name, "entry": origin.entry, "lms": origin.lms,
                                            "file": origin.file, **origin.ids}
    path.write_text(json.dumps(known, indent=1, sort_keys=True))


def submission_times(out: Path, pairs: list, times_file: Path | None) -> tuple[dict, list]:
    """Give each submission its time from a source that knows (grader/grade/times.py):
    the TIMES file, else nbgrader's timestamp.txt; never a zip entry's time.
    Returns ({(student, assignment): source}, notes for the report)."""
    from grader.grade import times
    from grader.late import write_timestamp

    given = times.load(times_file, sorted({a for _, a in pairs}), attempt.POLICY.lms_timezone) if times_file else {}
    known, sources, notes = origins(out), {}, []
    for student, assignment in pairs:
        folder = out / "submitted" / student / assignment
        if (student, assignment) in given:
            when, source = given[(student, assignment)]
            write_timestamp(folder, when)
            sources[(student, assignment)] = source
        elif (folder / "timestamp.txt").is_file():
            sources[(student, assignment)] = "timestamp.txt (nbgrader)"
        else:
            sources[(student, assignment)] = ""
            penalised = attempt.POLICY.due.get(assignment) is not None and attempt.POLICY.penalty_percent > 0
            late_mark = known.get((student, assignment), {}).get("late")
            if late_mark:
                notes.append(Outcome(student, assignment, True, 0.0,
                                     "Canvas marks this submission LATE, but its download carries no time: no late "
                                     "penalty applied (give TIMES= Canvas's submissions list to apply the policy)"))
            elif penalised:
                notes.append(Outcome(student, assignment, True, 0.0,
                                     "no trustworthy submission time (an LMS zip's entry times are not submission "
                                     "times): no late penalty applied; give TIMES= to apply the policy"))
    (out / "time-sources.json").write_text(json.dumps({f"{s}/{a}": v for (s, a), v in sources.items()}, indent=1))
    return sources, notes


def check_notebook(folder: Path, assignment: str, limits=None) -> str:
    """Why a submitted folder cannot be graded ('' if it can)."""
    from grader.grade import intake

    path = folder / f"{assignment}.ipynb"
    if not path.exists():
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        if others:
            return f"expected {path.name}, found {', '.join(others)} (a notebook for another assignment?): 0 points"
        return f"no {path.name} in the submission: 0 points"
    too_big = intake.notebook_size_problem(path, limits)
    if too_big:
        return too_big
    try:
        with open(path, "rb") as fh:  # count the cells before nbformat validates them all
            raw = json.load(fh)
        cells = raw.get("cells") if isinstance(raw, dict) else None
        if isinstance(cells, list) and len(cells) > (limits or intake.Limits.from_env()).cells:
            return intake.cell_count_problem(len(cells), path, limits)
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:  # corrupt JSON, not a notebook at all, ...
        return f"{path.name} is not a readable notebook ({type(err).__name__}: {str(err)[:80]}): 0 points"
    if not nb.cells:
        return f"{path.name} has no cells: 0 points"
    return ""


def finish(out: Path, main_url: str, outcome: Outcome) -> None:
    """Merge a finished worker into the course gradebook and mark it done."""
    from grader.gradebook import merge

    s, a = outcome.student, outcome.assignment
    work = outcome.work
    if outcome.ok:
        from grader.sanitize import sanitize_notebook

        graded = work / "autograded" / s / a / f"{a}.ipynb"
        sanitize_notebook(graded)  # before comparing answers: the course folder only holds sanitized copies
        outcome.score, outcome.max_score = score(sqlite_url(work / "gradebook.db"), a, s)
        unchanged = _unchanged_cells(out, work, outcome)
        for note in merge(sqlite_url(work / "gradebook.db"), main_url, a, s, unchanged):
            outcome.message = (outcome.message + " " if outcome.message else "") + note
        outcome.score = score(main_url, a, s)[0]  # with the manual marks kept by merge
        _apply_late_penalty(out, work, main_url, outcome)
        sanitize_notebook(graded)  # again: the grader's notes quote student code
        dest = out / "autograded" / s / a
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        # only the graded notebook, its time and nbgrader's exchange secret (release_feedback reads both
        # beside the feedback): nothing else a submission held reaches feedback/
        for name in (f"{a}.ipynb", "timestamp.txt", "submission_secret.txt"):
            src = work / "autograded" / s / a / name
            if src.is_file() and not src.is_symlink():
                shutil.copyfile(src, dest / name)
    done = out / "done" / f"{s}__{a}.json"
    done.parent.mkdir(exist_ok=True)
    if work is not None:
        done.write_text(json.dumps(asdict(outcome)))
        discard(work)


def _apply_late_penalty(out: Path, work: Path, main_url: str, outcome: Outcome) -> None:
    """Store the course policy's penalty as nbgrader's late_submission_penalty
    and put the reason at the top of the student's feedback."""
    from nbgrader.api import Gradebook

    from grader.late import lateness, read_timestamp

    s, a = outcome.student, outcome.assignment
    try:
        outcome.time_source = json.loads((out / "time-sources.json").read_text()).get(f"{s}/{a}", "")
    except (OSError, ValueError):
        outcome.time_source = ""
    late = lateness(attempt.POLICY, s, a, read_timestamp(out / "submitted" / s / a), outcome.max_score or 0.0)
    outcome.late, outcome.late_penalty = (late.sentence(attempt.POLICY, outcome.max_score or 0.0), late.penalty) if late \
        else ("", 0.0)
    with Gradebook(main_url) as gb:
        for nb in gb.find_submission(a, s).notebooks:
            nb.late_submission_penalty = late.penalty if late else None
            break  # one notebook per assignment: the penalty is counted once
        gb.db.commit()
    if late:
        outcome.score = max(0.0, (outcome.score or 0.0) - late.penalty)
        add_note(work, s, a, late.sentence(attempt.POLICY, outcome.max_score or 0.0))


def _unchanged_cells(out: Path, work: Path, outcome: Outcome):
    """Which marked cells a regrade may keep the instructor's mark on: an
    answer cell whose text is the same as in the graded copy already in the
    course folder; any other cell (an autograded test, a task) only when the
    whole submission is the same."""
    s, a = outcome.student, outcome.assignment
    from grader.notebooks import answer_cells

    before = answer_cells(out / "autograded" / s / a / f"{a}.ipynb")
    after = answer_cells(work / "autograded" / s / a / f"{a}.ipynb")
    done = out / "done" / f"{s}__{a}.json"
    try:
        same_submission = json.loads(done.read_text()).get("digest") == outcome.digest
    except (OSError, ValueError):
        same_submission = False

    def unchanged(cell: str) -> bool:
        if cell in before or cell in after:
            return cell in before and before.get(cell) == after.get(cell)
        return same_submission

    return unchanged


def previously_done(out: Path, student: str, assignment: str) -> Outcome | None:
    done = out / "done" / f"{student}__{assignment}.json"
    if not done.exists():
        return None
    outcome = Outcome(**json.loads(done.read_text()))
    same = outcome.digest == submission_digest(out / "submitted" / student / assignment)
    return outcome if same and (outcome.ok or outcome.message) else None


def _local_results(pool, out: Path, todo: list):
    """Grade on this machine, ``--jobs`` at a time; yield ((student, assignment), Outcome or exception)."""
    futures = {pool.submit(grade_one, out, s, a): (s, a) for s, a in todo}
    for future in as_completed(futures):
        try:
            yield futures[future], future.result()
        except KeyboardInterrupt:
            raise
        except Exception as err:
            yield futures[future], err


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde submissions; write feedback HTML and grades CSV.")
    parser.add_argument("submissions", type=Path, help="folder <student>/<assignment>/*.ipynb, or an LMS zip")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grading")
    parser.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at a time")
    parser.add_argument("--name-pattern", default=None,
                        help="regexp (groups student_id, file_id) for zip entry names; default: Canvas's and "
                             "Moodle's download layouts, then <student>_..._<assignment>.ipynb")
    parser.add_argument("--db-url", default=None, help="course gradebook URL (default: SQLite in --out)")
    parser.add_argument("--regrade", action="store_true", help="grade again even what a previous run finished")
    parser.add_argument("--scheduler", default=None,
                        help="grade on a Dask cluster: the scheduler's address, e.g. tcp://host:8786 (grader/grade/cluster.py)")
    parser.add_argument("--times", type=Path, default=None,
                        help="submission times from the LMS: Canvas's submissions JSON, Moodle's grading worksheet, "
                             "or a CSV student_id,submitted_at[,assignment] (grader/grade/times.py)")
    parser.add_argument("--course", type=Path, default=COURSE_FILE,
                        help="due dates, extensions and the late policy (default: grader/course.toml)")
    args = parser.parse_args(argv)
    from grader.late import CourseFileError, load_policy

    try:
        attempt.POLICY = load_policy(args.course)
    except CourseFileError as err:
        parser.error(str(err))

    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    names = args.assignment or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; choose from {assignments()}")
    from grader.author.record import refuse_if_stale

    refuse_if_stale(names, kinds=("hidden",))  # answers recorded from other course sources: exits naming `make references ASSIGNMENT=...`
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    from vaelab.runtime import cpu_budget

    attempt.THREADS_PER_JOB = max(1, cpu_budget() // args.jobs)
    seal.configure(args.jobs)
    client = None
    if args.scheduler:
        from grader.grade import cluster

        try:
            client = cluster.connect(args.scheduler)
            expected = cluster.fingerprint()
            workers = cluster.check_workers(client, expected)
        except (ConnectionError, cluster.VersionSkew) as err:
            if client is not None:
                client.close()
            print(f"make grade: {err}", file=sys.stderr)
            return 2
    out = args.out.resolve()
    if client is None:
        prefix, why = seal.isolation()
        attempt.UNSAFE_NOTE = "" if prefix else (f"This notebook was graded WITHOUT the kernel sandbox (UNSAFE=1: {why}); "
                                         "other submissions' code could have changed its result.")
        if not prefix and os.environ.get("UNSAFE", "") not in ("1", "yes", "true"):
            print(f"Refusing to grade: the kernel sandbox cannot be built here ({why}), so student code would run "
                  "with this process's rights and could change other students' grades. Grade as root or where "
                  "user namespaces are allowed; UNSAFE=1 grades anyway and the class report says so.",
                  file=sys.stderr)
            return 2
    print(f"Preparing course folder {out}")
    main_url = prepare_course(out, names, args.db_url)
    if client is not None:
        print(f"Dask cluster at {args.scheduler}: {workers} worker(s); this process merges every result "
              f"into the gradebook ({'PostgreSQL' if main_url.startswith('postgresql') else main_url.split(':')[0]})")
    pairs, problems = collect(args.submissions.resolve(), out, names, args.name_pattern or DEFAULT_NAME_PATTERN,
                              "pattern" if args.name_pattern else "auto")
    from grader.grade.times import TimesError

    try:
        _, time_notes = submission_times(out, pairs, args.times)
    except TimesError as err:
        print(f"make grade: {err}", file=sys.stderr)
        return 2
    # What grading kernels must not see: answers, solutions, other students' work.
    seal.hide([ROOT / "grader", SOLUTIONS, ROOT / "tests", ROOT / ".git", ROOT / "build", out,
               args.submissions.resolve()])
    if client is None and pairs:
        seal.warm()  # a cluster's workers each start their own with their first notebook
    limits = {**sandbox.describe(), **seal.describe(), "late policy": attempt.POLICY.describe(),
              "not run": ("nothing (VAELAB_RUN_DEMOS=1)" if os.environ.get("VAELAB_RUN_DEMOS") else
                          "cells tagged demo and the self-checks (they cannot change a grade)")}
    print("Limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()))
    if not pairs and not problems:
        print("No submissions found. Expected <student>/<assignment>/<assignment>.ipynb or an LMS zip.")
        if client is not None:
            client.close()
        return 1

    from vaelab.runtime import progress

    outcomes, todo = [], []
    for student, assignment in pairs:
        earlier = None if args.regrade else previously_done(out, student, assignment)
        (outcomes.append(earlier) if earlier else todo.append((student, assignment)))
    if outcomes:
        print(f"Resuming: {len(outcomes)} notebook(s) were graded by an earlier run and are kept.")
    batch_start = time.perf_counter()
    log_lines = not sys.stdout.isatty()
    pool = ThreadPoolExecutor(args.jobs)
    try:
        results = (cluster.submit_all(client, out, todo, expected) if client is not None
                   else _local_results(pool, out, todo))
        for (student, assignment), result in progress(results, total=len(todo), desc="autograding", unit="notebook"):
            if isinstance(result, BaseException):  # a fault of the grader's own costs one notebook, not the batch
                where = "cluster task failed" if client is not None else "grader error"
                outcome = Outcome(student, assignment, False, 0.0,
                                  f"could not be graded ({where} {type(result).__name__}: {str(result)[:160]}): 0 points",
                                  submission_digest(out / "submitted" / student / assignment))
                outcome.work = None
            elif isinstance(result, dict):  # from a cluster worker
                outcome = cluster.receive(out, result)
            else:
                outcome = result
            finish(out, main_url, outcome)  # the only writer of the course gradebook
            outcomes.append(outcome)
            if log_lines:  # cron, CI and nohup logs get one line per notebook (the bar is for terminals)
                print(progress_line(outcome, len(outcomes), len(pairs)), flush=True)
    except KeyboardInterrupt:  # Ctrl-C: stop the workers; finished notebooks are kept for the next run
        STOP.set()
        pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()  # the scheduler forgets this batch's tasks once no client holds them
        stop_workers()
        seal.cleanup(kill=True)
        print(f"\nInterrupted: {len(outcomes)} notebook(s) finished and kept; run the same command to resume.")
        return 130
    pool.shutdown()
    if client is not None:
        client.close()
    seal.cleanup()
    batch_seconds = time.perf_counter() - batch_start
    (out / "batch.json").write_text(json.dumps({"jobs": args.jobs, "notebooks": len(todo), "seconds": batch_seconds,
                                                "scheduler": args.scheduler}))

    for name in sorted({a for _, a in pairs}):
        result = run_nbgrader(["generate_feedback", name, "--force"], cwd=out)
        if result.returncode != 0:
            print(f"generate_feedback {name} reported a problem: {result.stderr.strip().splitlines()[-1:]}")
    from grader.sanitize import harden_feedback

    harden_feedback(out / "feedback")  # a Content-Security-Policy on every page: no script a student wrote runs
    csv_path = out / "grades.csv"
    result = run_nbgrader(["export", f"--to={csv_path}"], cwd=out)
    if result.returncode != 0:
        print(f"export failed: {result.stderr[-1000:]}")
        return 1

    from grader.after.report import add_manual_status, write_report

    pending = add_manual_status(out, csv_path)

    report = write_report(out, outcomes + problems + time_notes, limits=limits)
    for o in [o for o in outcomes + problems + time_notes if o.message]:
        print(f"  ! {o.student}/{o.assignment}: {o.message}")
    how = f"on the Dask cluster at {args.scheduler}" if args.scheduler else f"with {args.jobs} job(s)"
    print(f"\nGraded {len(todo)} notebook(s) in {batch_seconds:.1f} s {how}; "
          f"{len(outcomes) - len(todo)} kept from an earlier run; "
          f"{len(problems) + sum(not o.ok for o in outcomes)} could not be graded.")
    if pending:
        print(f"  {pending} submission(s) have a written answer that still needs a manual grade "
              f"(column 'status' of grades.csv); mark them with `make formgrader OUT={out}`")
    print(f"  grades CSV:   {csv_path}")
    print(f"  feedback:     {out / 'feedback'}/<student>/<assignment>/*.html")
    print(f"  class report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
