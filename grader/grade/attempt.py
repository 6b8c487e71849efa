"""One attempt: grade one (student, assignment) in a worker folder of its own.

Stage the submission with a private copy of the template gradebook, run nbgrader in a supervised,
resource-limited process whose kernel is sealed (grader/grade/seal.py), find the cell that stopped
the kernel and regrade with it blanked, then judge the recorded outputs. The same function runs in a
local pool (grader/grade/batch.py) and on a Dask worker (grader/grade/cluster.py); the batch's
settings below are set by whichever runs it.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader import ROOT, notebooks
from grader.author import budgets
from grader.grade import seal
from grader.nbgrader_api import CONFIG_FILE, exchange_config
from grader.sandbox import limits as sandbox

THREADS_PER_JOB = 1  # set by the runner (batch.main, cluster.grade_task): the CPU budget (quota and affinity) shared by --jobs workers


def _no_policy():
    from grader.late import Policy

    return Policy()


POLICY = _no_policy()  # set from the course file by batch.main()
UNSAFE_NOTE = ""  # set by batch.main() when grading without the kernel sandbox (UNSAFE=1): said on every feedback page


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
    time_source: str = ""  # where the submission time came from (grader/grade/times.py), "" when none is known


def score(url: str, assignment: str, student: str) -> tuple:
    from nbgrader.api import Gradebook

    try:
        with Gradebook(url) as gb:
            submission = gb.find_submission(assignment, student)
            return float(submission.score), float(submission.max_score)
    except Exception:
        return None, None


SUPERVISOR = Path(__file__).resolve().parent.parent / "sandbox" / "supervise.py"
NBGRADER_CLI = Path(__file__).resolve().parent.parent / "nbgrader_cli.py"  # nbgrader, started a second faster


def run_nbgrader(args, cwd: Path, timeout: float | None = None, env=None, limited=False):
    """Run one nbgrader command under grader/sandbox/supervise.py, which owns every
    process it starts (kernels that left the session, daemons, fork bombs)
    and kills them all when nbgrader ends, times out or the batch stops.
    Output goes to a file, never a pipe a descendant could hold open."""
    command = [sys.executable, str(NBGRADER_CLI), *args]
    if limited:
        if STOP.is_set():
            raise KeyboardInterrupt("the batch was interrupted")
        command = sandbox.wrap([*seal.nbgrader_command(NBGRADER_CLI), *args])
    fd, log = tempfile.mkstemp(prefix=".nbgrader-", suffix=".log", dir=cwd)
    os.close(fd)
    status = log[:-4] + ".status.json"
    supervised = [sys.executable, str(SUPERVISOR), "--timeout", str(timeout or 0), "--log", log,
                  "--status", status, "--", *command]
    proc = subprocess.Popen(supervised, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    LIVE.add(proc)
    try:
        # the supervisor enforces the timeout; this wait only guards against the supervisor itself hanging
        code = proc.wait(timeout=None if timeout is None else timeout + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    finally:
        LIVE.discard(proc)
    text = Path(log).read_text(errors="replace")
    with contextlib.suppress(OSError):
        os.remove(log)
        os.remove(status)
    if code == 124:
        raise subprocess.TimeoutExpired(command, timeout, output=text)
    return subprocess.CompletedProcess(command, code, text, text)


def stop_workers(grace: float = 10.0) -> None:
    """Ctrl-C: ask every supervisor to end its tree (SIGTERM), then make sure."""
    for proc in list(LIVE):
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in list(LIVE):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def worker_config_text(root: Path, db_url: str, execute: dict | None = None) -> str:
    text = ("# Written by grader/grade/batch.py: the course configuration, rooted here.\n"
            f"load_subconfig({str(CONFIG_FILE)!r})\n"
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(root.resolve())!r}\n"
            f"c.CourseDirectory.db_url = {db_url!r}\n")
    if execute is None:  # the course folder: its own exchange, for `make formgrader`
        text += exchange_config(root) + "\n"
    if execute is not None:  # a grading worker: per-cell budgets and a trail of cell events
        text += ("import sys\n"
                 f"sys.path.insert(0, {str(ROOT)!r})\n"
                 "from grader.grade.tracked_execute import TrackedExecute\n"
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


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


COLLECTION_NOTES = "collection-notes"


def collection_notes(out: Path, student: str, assignment: str) -> list:
    try:
        return json.loads((out / COLLECTION_NOTES / f"{student}__{assignment}.json").read_text())
    except (OSError, ValueError):
        return []


def submission_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():  # collection writes no links; never follow one
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------- workers
LIVE: set = set()  # worker processes, ended if the batch is interrupted
_AST_LOCK = threading.Lock()
STOP = threading.Event()  # set on Ctrl-C: no new worker starts
_ATTEMPTS = itertools.count()


def new_worker_dir(out: Path, student: str, assignment: str) -> Path:
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
    work = new_worker_dir(out, student, assignment)
    (work / "submitted" / student).mkdir(parents=True)
    (work / "solutions").symlink_to(out / "solutions")
    shutil.copy(out / "template" / "gradebook.db", work / "gradebook.db")
    execute = {"trail": str(work / "trail.jsonl"), "budgets": budgets.cell_budgets(assignment),
               "cap": budgets.cell_cap(), "skip": skipped_cells(out, assignment),
               "extra": budgets.extra_cell_timeout()}
    (work / "nbgrader_config.py").write_text(worker_config_text(work, sqlite_url(work / "gradebook.db"), execute))
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
    (grader/grade/seal.py): its own home and user, hidden inputs but no answers."""
    work = _stage(out, student, assignment, blank_cells)
    kernel_env = seal.prepare(work, assignment, cpus=THREADS_PER_JOB)
    env = {k: v for k, v in os.environ.items() if k not in ("VAELAB_HIDDEN_REFERENCES", "VAELAB_SEALED_RESULTS")}
    env.update(kernel_env, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", VAELAB_CACHE=str(work / "cache"),
               OMP_NUM_THREADS=str(THREADS_PER_JOB), MKL_NUM_THREADS=str(THREADS_PER_JOB),
               OMP_WAIT_POLICY="PASSIVE")  # idle OpenMP threads sleep: no spinning on a shared machine
    budget = budgets.notebook_budget(assignment)
    try:
        result = run_nbgrader(["autograde", assignment, f"--student={student}", "--create", "--force"],
                           cwd=work, timeout=budget, env=env, limited=True)
    except subprocess.TimeoutExpired:
        return False, f"grading exceeded the notebook's {budget:.0f} s budget", work
    graded = work / "autograded" / student / assignment / f"{assignment}.ipynb"
    if result.returncode == 0 and graded.exists():
        return True, "", work
    log = (result.stdout or "").strip().splitlines()
    reason = next((line.strip() for line in reversed(log) if "Kernel died" in line or "DeadKernel" in line), "")
    return False, reason or (log[-1][:200] if log else f"nbgrader exited with {result.returncode}"), work


def discard(work: Path) -> None:
    seal.remove_home(work)
    shutil.rmtree(work, ignore_errors=True)


def _todo_cells(out: Path, assignment: str) -> dict:
    """``{grade_id: names it defines}`` for the assignment's TODO cells."""
    from grader.notebooks import stub_names, defined_names

    nb = nbformat.read(str(out / "template" / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)
    return {c.metadata.nbgrader["grade_id"]: set(defined_names(c.source) or stub_names(c.source))
            for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def culprit(work: Path, student: str, assignment: str, todos: dict) -> tuple[str | None, str]:
    """The cell to blank after a failed attempt, and why, read from the
    attempt's own trail (grader/grade/tracked_execute.py): the cell that timed
    out, or that was running when the kernel died or the budget ran out.
    A TODO's self-check and hidden test blame the TODO; another cell blames
    the one TODO it names, else itself (it earns no points of its own)."""
    from grader.grade.tracked_execute import read_trail

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
    from grader.grade.integrity import scan_notebook

    start = time.perf_counter()
    digest = submission_digest(out / "submitted" / student / assignment)
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
        discard(work)
        ok, reason, work = _run_worker(out, student, assignment, blank_cells=tuple(blanked))
    message = ""
    if ok and UNSAFE_NOTE:
        add_note(work, student, assignment, UNSAFE_NOTE)
    left_out = collection_notes(out, student, assignment)
    if ok and left_out:
        add_note(work, student, assignment, "Not collected from your submission: " + "; ".join(left_out) + ".")
    if ok and notes:
        message = " ".join(notes) + " Everything else was graded."
        add_note(work, student, assignment, message)
    elif not ok:
        message = f"could not be graded ({reason}): 0 points"
    if ok:  # the hidden tests' verdicts, decided outside the kernel
        verdicts = seal.judge(seal.home_of(work), assignment)
        seal.apply(sqlite_url(work / "gradebook.db"), work / "autograded" / student / assignment / f"{assignment}.ipynb",
                   assignment, student, verdicts)
    if ok and violations:
        zero_and_flag(sqlite_url(work / "gradebook.db"), assignment, student)
        more = f"; and {len(violations) - 3} more" if len(violations) > 3 else ""
        message = ("Integrity check: your code changes how answers are judged (" + "; ".join(violations[:3]) + more +
                   "). Autograded points are set to 0 and the notebook is flagged for the instructor.")
        add_note(work, student, assignment, message)
    outcome = Outcome(student, assignment, ok, time.perf_counter() - start, message, digest)
    outcome.work = work  # not saved: where finish() picks the results up
    return outcome


def add_note(work: Path, student: str, assignment: str, message: str) -> None:
    path = work / "autograded" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grader note.** {message}"))
    nbformat.write(nb, str(path))


