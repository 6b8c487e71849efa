"""``make grade``: autograde a batch of submissions with nbgrader.

    python -m grader.grade SUBMISSIONS [--out build/grading] [--assignment 01_elbo] [--jobs N]

SUBMISSIONS is a folder in nbgrader's layout
(``<student>/<assignment>/<assignment>.ipynb``) or an LMS zip of notebooks
named ``<student>_..._<assignment>.ipynb``, read entry by entry
(grader/intake.py: no symbolic link is followed, no bad entry stops the batch).

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
import functools
import itertools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from grader import ROOT, SOLUTIONS, assignments, budgets, notebooks, sandbox, seal
from grader.nbgrader_api import CONFIG_FILE, api_for
from grader.formgrader import exchange_config

# <student>_<anything>_<NN_name>.ipynb, as LMS bulk downloads name files.
DEFAULT_NAME_PATTERN = r".*/(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z_]+\.ipynb)$"
THREADS_PER_JOB = 1  # set in main(): the CPU budget (quota and affinity) shared by --jobs workers


COURSE_FILE = ROOT / "grader" / "course.toml"


def _no_policy():
    from grader.late import Policy

    return Policy()


POLICY = _no_policy()  # set from the course file by main()
UNSAFE_NOTE = ""  # set by main() when grading without the kernel sandbox (UNSAFE=1): said on every feedback page


@dataclass
class Outcome:
    student: str
    assignment: str
    ok: bool
    seconds: float
    message: str = ""
    digest: str = ""
    score: float | None = None
    max_score: float | None = None
    late: str = ""  # the late-penalty sentence (grader/late.py), empty when on time
    late_penalty: float = 0.0
    time_source: str = ""  # where the submission time came from (grader/times.py), "" when none is known


def progress_line(outcome: Outcome, done: int, total: int) -> str:
    score = (f"{outcome.score:g}/{outcome.max_score:g}" if outcome.score is not None and outcome.max_score
             else "not graded")
    note = f" ({outcome.message[:100]})" if outcome.message else ""
    return f"[{done}/{total}] {outcome.student}/{outcome.assignment}: {score} in {outcome.seconds:.1f} s{note}"


def _score(url: str, assignment: str, student: str) -> tuple:
    from nbgrader.api import Gradebook

    try:
        with Gradebook(url) as gb:
            submission = gb.find_submission(assignment, student)
            return float(submission.score), float(submission.max_score)
    except Exception:
        return None, None


SUPERVISOR = Path(__file__).resolve().with_name("supervise.py")
NBGRADER_CLI = Path(__file__).resolve().with_name("nbgrader_cli.py")  # nbgrader, started a second faster


def _nbgrader(args, cwd: Path, timeout: float | None = None, env=None, limited=False):
    """Run one nbgrader command under grader/supervise.py, which owns every
    process it starts (kernels that left the session, daemons, fork bombs)
    and kills them all when nbgrader ends, times out or the batch stops.
    Output goes to a file, never a pipe a descendant could hold open."""
    command = [sys.executable, str(NBGRADER_CLI), *args]
    if limited:
        if _STOP.is_set():
            raise KeyboardInterrupt("the batch was interrupted")
        command = sandbox.wrap([*seal.nbgrader_command(NBGRADER_CLI), *args])
    fd, log = tempfile.mkstemp(prefix=".nbgrader-", suffix=".log", dir=cwd)
    os.close(fd)
    status = log[:-4] + ".status.json"
    supervised = [sys.executable, str(SUPERVISOR), "--timeout", str(timeout or 0), "--log", log,
                  "--status", status, "--", *command]
    proc = subprocess.Popen(supervised, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _LIVE.add(proc)
    try:
        # the supervisor enforces the timeout; this wait only guards against the supervisor itself hanging
        code = proc.wait(timeout=None if timeout is None else timeout + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    finally:
        _LIVE.discard(proc)
    text = Path(log).read_text(errors="replace")
    with contextlib.suppress(OSError):
        os.remove(log)
        os.remove(status)
    if code == 124:
        raise subprocess.TimeoutExpired(command, timeout, output=text)
    return subprocess.CompletedProcess(command, code, text, text)


def stop_workers(grace: float = 10.0) -> None:
    """Ctrl-C: ask every supervisor to end its tree (SIGTERM), then make sure."""
    for proc in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in list(_LIVE):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _config(root: Path, db_url: str, execute: dict | None = None) -> str:
    text = ("# Written by grader/grade.py: the course configuration, rooted here.\n"
            f"load_subconfig({str(CONFIG_FILE)!r})\n"
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(root.resolve())!r}\n"
            f"c.CourseDirectory.db_url = {db_url!r}\n")
    if execute is None:  # the course folder: its own exchange, for `make formgrader`
        text += exchange_config(root) + "\n"
    if execute is not None:  # a grading worker: per-cell budgets and a trail of cell events
        text += ("import sys\n"
                 f"sys.path.insert(0, {str(ROOT)!r})\n"
                 "from grader.tracked_execute import TrackedExecute\n"
                 "from nbgrader.converters import Autograde\n"
                 "from nbgrader.preprocessors import Execute\n"
                 "c.Autograde.autograde_preprocessors = [\n"
                 "    TrackedExecute if p is Execute else p\n"
                 "    for p in Autograde.class_traits()['autograde_preprocessors'].default()]\n"
                 f"c.TrackedExecute.trail_file = {execute['trail']!r}\n"
                 f"c.TrackedExecute.cell_budgets = {execute['budgets']!r}\n"
                 f"c.TrackedExecute.timeout = {int(execute['cap'])}\n"
                 f"c.TrackedExecute.skip_cells = {list(execute.get('skip', []))!r}\n"
                 f"c.TrackedExecute.unknown_cell_timeout = {float(execute.get('extra', 0))!r}\n"
                 "c.TrackedExecute.interrupt_on_timeout = False\n"
                 # the outputs are saved by then; the supervisor ends whatever the kernel left anyway
                 "c.TrackedExecute.shutdown_kernel = 'immediate'\n")
    return text


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
def collect(source: Path, out: Path, names: list, pattern: str, lms_layout: str = "auto") -> tuple[list, list]:
    """Put submissions under out/submitted/ (grader/intake.py: regular files
    only, LMS zips entry by entry); return (pairs to grade, problems). A bad
    file or entry is reported and skipped; it never stops the batch."""
    from grader import intake

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


COLLECTION_NOTES = "collection-notes"


def _write_collection_notes(out: Path, student: str, assignment: str, notes: list) -> None:
    """What collection left out of one submission, kept beside (not in) it so
    the grade step can put it at the top of the student's feedback."""
    path = out / COLLECTION_NOTES / f"{student}__{assignment}.json"
    if notes:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(notes))
    elif path.exists():
        path.unlink()


def collection_notes(out: Path, student: str, assignment: str) -> list:
    try:
        return json.loads((out / COLLECTION_NOTES / f"{student}__{assignment}.json").read_text())
    except (OSError, ValueError):
        return []


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


def origins(out: Path) -> dict:
    """{(student, assignment): what _record_origin wrote}."""
    try:
        known = json.loads((out / "collected.json").read_text())
    except (OSError, ValueError):
        return {}
    return {tuple(key.split("/", 1)): value for key, value in known.items() if "/" in key}


def submission_times(out: Path, pairs: list, times_file: Path | None) -> tuple[dict, list]:
    """Give each submission its time from a source that knows (grader/times.py):
    the TIMES file, else nbgrader's timestamp.txt; never a zip entry's time.
    Returns ({(student, assignment): source}, notes for the report)."""
    from grader import times
    from grader.late import write_timestamp

    given = times.load(times_file, sorted({a for _, a in pairs}), POLICY.lms_timezone) if times_file else {}
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
            penalised = POLICY.due.get(assignment) is not None and POLICY.penalty_percent > 0
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
    from grader import intake

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


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():  # collection writes no links; never follow one
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------- workers
_LIVE: set = set()  # worker processes, ended if the batch is interrupted
_AST_LOCK = threading.Lock()
_STOP = threading.Event()  # set on Ctrl-C: no new worker starts
_ATTEMPTS = itertools.count()


def _new_worker_dir(out: Path, student: str, assignment: str) -> Path:
    """A fresh folder per attempt, so a worker orphaned by a killed batch can
    never collide with the batch that resumes it."""
    return out / "work" / f"{student}__{assignment}.{os.getpid()}.{next(_ATTEMPTS)}"


def skipped_cells(out: Path, assignment: str) -> list:
    """The cells grading does not run, read from the instructor's notebook
    (never the submission's tags): demonstrations tagged ``demo`` and the
    self-checks. ``VAELAB_RUN_DEMOS=1`` runs every cell, as plain nbgrader does."""
    if os.environ.get("VAELAB_RUN_DEMOS"):
        return []
    path = out / "solutions" / assignment / f"{assignment}.ipynb"
    try:
        return _skipped_in(str(path), path.stat().st_mtime_ns)
    except OSError:
        return []


@functools.lru_cache(maxsize=None)
def _skipped_in(path: str, mtime_ns: int) -> list:
    try:
        return notebooks.skipped_while_grading(notebooks.read(path))
    except (OSError, ValueError):
        return []


BLANKED = "raise NotImplementedError('this cell stopped the grader, so it was not run')"


def _stage(out: Path, student: str, assignment: str, blank_cells=()) -> Path:
    work = _new_worker_dir(out, student, assignment)
    (work / "submitted" / student).mkdir(parents=True)
    (work / "solutions").symlink_to(out / "solutions")
    shutil.copy(out / "template" / "gradebook.db", work / "gradebook.db")
    execute = {"trail": str(work / "trail.jsonl"), "budgets": budgets.cell_budgets(assignment),
               "cap": budgets.cell_cap(), "skip": skipped_cells(out, assignment),
               "extra": budgets.extra_cell_timeout()}
    (work / "nbgrader_config.py").write_text(_config(work, _sqlite(work / "gradebook.db"), execute))
    dest = work / "submitted" / student / assignment
    shutil.copytree(out / "submitted" / student / assignment, dest, symlinks=True)
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
    _name_cells(nb)
    for cell in nb.cells:
        # the same identity as the trail's (notebooks.cell_key): a TODO by its grade_id, any other cell by its id
        if notebooks.cell_key(cell) in blank_cells:
            cell.source = BLANKED
        tags = cell.get("metadata", {}).get("tags")
        if isinstance(tags, list) and len(set(map(str, tags))) != len(tags):
            # a tag twice makes the notebook invalid, and nbgrader would refuse all of it
            cell.metadata["tags"] = list(dict.fromkeys(map(str, tags)))
    guard = nbformat.v4.new_code_cell(sandbox.GUARD_CELL)
    guard.metadata["tags"] = ["grader-guard"]
    nb.cells.insert(0, guard)
    nbformat.write(nb, str(path))
    return work


CELL_ID = __import__("re").compile(r"[A-Za-z0-9_-]{1,64}")


def _name_cells(nb) -> None:
    """Give every cell a valid, unique id (``cell-<n>``, n counted from 1 in
    the submission), so the trail, the culprit finder and the blanking all
    name a cell the student added the same way in every attempt."""
    seen = set()
    for number, cell in enumerate(nb.cells, 1):
        ident = cell.get("id")
        if not isinstance(ident, str) or not CELL_ID.fullmatch(ident) or ident in seen:
            ident = f"cell-{number}"
            while ident in seen:
                ident += "x"
            cell["id"] = ident
        seen.add(ident)
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor") or 0))


def _cell_label(work: Path, student: str, assignment: str, key: str, todos: dict) -> str:
    """How the feedback names a cell: a TODO by its name, any other cell by its
    position (as the student sees it) and first line."""
    if key in todos:
        return f"'{key}'"
    try:
        cells = nbformat.read(str(work / "submitted" / student / assignment / f"{assignment}.ipynb"), as_version=4).cells
    except Exception:
        return f"'{key}'"
    for number, cell in enumerate(cells[1:], 1):  # cells[0] is the grader's guard cell
        if notebooks.cell_key(cell) == key:
            lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
            first = "; ".join(lines[:2])
            return f"number {number}" + (f" (it begins `{first[:80]}`)" if first else "")
    return f"'{key}'"


def _run_worker(out: Path, student: str, assignment: str, blank_cells=()) -> tuple[bool, str, Path]:
    """One nbgrader autograde attempt. The kernel it starts is sealed
    (grader/seal.py): its own home and user, hidden inputs but no answers."""
    work = _stage(out, student, assignment, blank_cells)
    kernel_env = seal.prepare(work, assignment, cpus=THREADS_PER_JOB)
    env = {k: v for k, v in os.environ.items() if k not in ("VAELAB_HIDDEN_REFERENCES", "VAELAB_SEALED_RESULTS")}
    env.update(kernel_env, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", VAELAB_CACHE=str(work / "cache"),
               OMP_NUM_THREADS=str(THREADS_PER_JOB), MKL_NUM_THREADS=str(THREADS_PER_JOB))
    budget = budgets.notebook_budget(assignment)
    try:
        result = _nbgrader(["autograde", assignment, f"--student={student}", "--create", "--force"],
                           cwd=work, timeout=budget, env=env, limited=True)
    except subprocess.TimeoutExpired:
        return False, f"grading exceeded the notebook's {budget:.0f} s budget", work
    graded = work / "autograded" / student / assignment / f"{assignment}.ipynb"
    if result.returncode == 0 and graded.exists():
        return True, "", work
    log = (result.stdout or "").strip().splitlines()
    reason = next((line.strip() for line in reversed(log) if "Kernel died" in line or "DeadKernel" in line), "")
    return False, reason or (log[-1][:200] if log else f"nbgrader exited with {result.returncode}"), work


def _discard(work: Path) -> None:
    seal.remove_home(work)
    shutil.rmtree(work, ignore_errors=True)


def _todo_cells(out: Path, assignment: str) -> dict:
    """``{grade_id: names it defines}`` for the assignment's TODO cells."""
    from grader.notebooks import _stub_names, defined_names

    nb = nbformat.read(str(out / "template" / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)
    return {c.metadata.nbgrader["grade_id"]: set(defined_names(c.source) or _stub_names(c.source))
            for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def culprit(work: Path, student: str, assignment: str, todos: dict) -> tuple[str | None, str]:
    """The cell to blank after a failed attempt, and why, read from the
    attempt's own trail (grader/tracked_execute.py): the cell that timed
    out, or that was running when the kernel died or the budget ran out.
    A TODO's self-check and hidden test blame the TODO; another cell blames
    the one TODO it names, else itself (it earns no points of its own)."""
    from grader.tracked_execute import read_trail

    events = [e for e in read_trail(work / "trail.jsonl") if e.get("event") != "skipped"]
    if not events or events[-1]["event"] == "done":
        return None, ""
    last = events[-1]
    key = str(last.get("cell", ""))
    if last["event"] == "timeout":
        why = f"it ran past its time limit of {last.get('timeout')} s"
    elif last["event"] == "died":
        why = "it stopped the grading kernel"
    else:
        why = "it was still running when the notebook's time budget ran out"
    if key in todos:
        return key, why
    for prefix in ("check-", "test-"):
        if key.startswith(prefix) and key[len(prefix):] in todos:
            return key[len(prefix):], why
    path = work / "submitted" / student / assignment / f"{assignment}.ipynb"
    try:
        cells = nbformat.read(str(path), as_version=4).cells
        cell = next((c for c in cells if c.get("id") == key or
                     c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == key), None)
    except Exception:
        cell = None
    if cell is None or "grader-guard" in cell.get("metadata", {}).get("tags", []):
        return None, why  # not the submission's doing: blanking cannot help
    source = cell.source
    import re

    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))
    named = [cell_id for cell_id, names in todos.items() if names & words]
    if len(named) == 1:
        return named[0], f"a cell that uses it ({_cell_label(work, student, assignment, key, todos)}) stopped: {why}"
    return (key or None), why


MAX_EXTRA_ATTEMPTS = 8  # blanked non-TODO cells allowed beyond one per TODO


def grade_one(out: Path, student: str, assignment: str) -> Outcome:
    from grader.gradebook import zero_and_flag
    from grader.integrity import scan_notebook

    start = time.perf_counter()
    digest = _digest(out / "submitted" / student / assignment)
    with _AST_LOCK:  # CPython 3.11's ast.parse is not safe to call from two threads at once
        released = nbformat.read(str(out / "template" / "assignments" / assignment / f"{assignment}.ipynb"),
                                 as_version=4)
        violations = scan_notebook(nbformat.read(str(out / "submitted" / student / assignment / f"{assignment}.ipynb"),
                                                 as_version=4), released=released)
        todos = _todo_cells(out, assignment)
    blanked, notes = [], []
    ok, reason, work = _run_worker(out, student, assignment)
    while not ok and len(blanked) < len(todos) + MAX_EXTRA_ATTEMPTS:
        # blank the cell that stopped this attempt (found from the attempt itself) and grade the rest
        cell, why = culprit(work, student, assignment, todos)
        if cell is None or cell in blanked:
            break
        blanked.append(cell)
        cost = "it earned 0 points" if cell in todos else "it was not run (it earns no points of its own)"
        notes.append(f"Your cell {_cell_label(work, student, assignment, cell, todos)} was stopped because "
                     f"{why or reason or 'it crashed'}; {cost}.")
        _discard(work)
        ok, reason, work = _run_worker(out, student, assignment, blank_cells=tuple(blanked))
    message = ""
    if ok and UNSAFE_NOTE:
        _add_note(work, student, assignment, UNSAFE_NOTE)
    left_out = collection_notes(out, student, assignment)
    if ok and left_out:
        _add_note(work, student, assignment, "Not collected from your submission: " + "; ".join(left_out) + ".")
    if ok and notes:
        message = " ".join(notes) + " Everything else was graded."
        _add_note(work, student, assignment, message)
    elif not ok:
        message = f"could not be graded ({reason}): 0 points"
    if ok:  # the hidden tests' verdicts, decided outside the kernel
        verdicts = seal.judge(seal.home_of(work), assignment)
        seal.apply(_sqlite(work / "gradebook.db"), work / "autograded" / student / assignment / f"{assignment}.ipynb",
                   assignment, student, verdicts)
    if ok and violations:
        zero_and_flag(_sqlite(work / "gradebook.db"), assignment, student)
        more = f"; and {len(violations) - 3} more" if len(violations) > 3 else ""
        message = ("Integrity check: your code changes how answers are judged (" + "; ".join(violations[:3]) + more +
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
        from grader.sanitize import sanitize_notebook

        graded = work / "autograded" / s / a / f"{a}.ipynb"
        sanitize_notebook(graded)  # before comparing answers: the course folder only holds sanitized copies
        outcome.score, outcome.max_score = _score(_sqlite(work / "gradebook.db"), a, s)
        unchanged = _unchanged_cells(out, work, outcome)
        for note in merge(_sqlite(work / "gradebook.db"), main_url, a, s, unchanged):
            outcome.message = (outcome.message + " " if outcome.message else "") + note
        outcome.score = _score(main_url, a, s)[0]  # with the manual marks kept by merge
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
        _discard(work)


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
    late = lateness(POLICY, s, a, read_timestamp(out / "submitted" / s / a), outcome.max_score or 0.0)
    outcome.late, outcome.late_penalty = (late.sentence(POLICY, outcome.max_score or 0.0), late.penalty) if late \
        else ("", 0.0)
    with Gradebook(main_url) as gb:
        for nb in gb.find_submission(a, s).notebooks:
            nb.late_submission_penalty = late.penalty if late else None
            break  # one notebook per assignment: the penalty is counted once
        gb.db.commit()
    if late:
        outcome.score = max(0.0, (outcome.score or 0.0) - late.penalty)
        _add_note(work, s, a, late.sentence(POLICY, outcome.max_score or 0.0))


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
    same = outcome.digest == _digest(out / "submitted" / student / assignment)
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
                        help="grade on a Dask cluster: the scheduler's address, e.g. tcp://host:8786 (grader/cluster.py)")
    parser.add_argument("--times", type=Path, default=None,
                        help="submission times from the LMS: Canvas's submissions JSON, Moodle's grading worksheet, "
                             "or a CSV student_id,submitted_at[,assignment] (grader/times.py)")
    parser.add_argument("--course", type=Path, default=COURSE_FILE,
                        help="due dates, extensions and the late policy (default: grader/course.toml)")
    args = parser.parse_args(argv)
    global POLICY
    from grader.late import CourseFileError, load_policy

    try:
        POLICY = load_policy(args.course)
    except CourseFileError as err:
        parser.error(str(err))

    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    names = args.assignment or assignments()
    unknown = sorted(set(names) - set(assignments()))
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; choose from {assignments()}")
    from grader.make_references import refuse_if_stale

    refuse_if_stale(names)  # answers recorded from other course sources: exits naming `make references ASSIGNMENT=...`
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    global THREADS_PER_JOB
    from vaelab.runtime import cpu_budget

    THREADS_PER_JOB = max(1, cpu_budget() // args.jobs)
    seal.configure(args.jobs)
    client = None
    if args.scheduler:
        from grader import cluster

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
        global UNSAFE_NOTE
        UNSAFE_NOTE = "" if prefix else (f"This notebook was graded WITHOUT the kernel sandbox (UNSAFE=1: {why}); "
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
    from grader.times import TimesError

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
    limits = {**sandbox.describe(), **seal.describe(), "late policy": POLICY.describe(),
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
                                  _digest(out / "submitted" / student / assignment))
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
        _STOP.set()
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
        result = _nbgrader(["generate_feedback", name, "--force"], cwd=out)
        if result.returncode != 0:
            print(f"generate_feedback {name} reported a problem: {result.stderr.strip().splitlines()[-1:]}")
    from grader.sanitize import harden_feedback

    harden_feedback(out / "feedback")  # a Content-Security-Policy on every page: no script a student wrote runs
    csv_path = out / "grades.csv"
    result = _nbgrader(["export", f"--to={csv_path}"], cwd=out)
    if result.returncode != 0:
        print(f"export failed: {result.stderr[-1000:]}")
        return 1

    from grader.report import add_manual_status, write_report

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
