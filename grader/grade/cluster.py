"""``make grade SCHEDULER=tcp://host:8786``: the same grading on a Dask cluster.

Each (student, assignment) is one Dask task. A task carries what grading
that one notebook needs (the submission's folder, the course's template
gradebook and released notebook: a few hundred kB), grades it on the worker
with exactly the local machinery (:func:`grader.grade.attempt.grade_one`: sandbox,
sealed kernel, per-cell budgets, judge), and sends back the attempt's private
gradebook and graded notebook. The coordinator, the process that runs
``make grade``, merges them with :func:`grader.grade.batch.finish` as they arrive;
it stays the course gradebook's only writer (PostgreSQL for a cluster with
``DB_URL=``, or SQLite), so resume, manual marks and late penalties behave as
they do locally.

- **A worker that dies** (killed, out of memory, a lost node) takes its
  running task with it; the scheduler gives that task to another worker, and
  since results are merged only by the coordinator and only once per
  (student, assignment), nothing is lost or written twice.
- **Version skew is refused.** Before anything is sent, every worker reports
  a fingerprint (Python, torch, nbgrader, dask, the hashes of vaelab, the
  grader, the solutions and the hidden references); a worker that differs
  from the coordinator stops the batch with a message naming it and what
  differs. Each task checks again, for workers that join later.
- **Where it runs.** The scheduler unpickles each task, so it must be able
  to import ``grader`` (Dask's rule of one software environment), and the
  workers must also be able to start processes (the grading sandbox and the
  judge pool). ``make dask-scheduler`` and ``make dask-worker`` start both
  from a course checkout with the right settings
  (``DASK_DISTRIBUTED__WORKER__DAEMON=False``, one thread per worker);
  the check above names a worker that is not set up so.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from grader import ROOT, SOLUTIONS

_FINGERPRINT_FILES = {
    "vaelab": ROOT / "source_lib" / "vaelab",
    "grader": ROOT / "grader",
    "solutions": SOLUTIONS,
}


class VersionSkew(RuntimeError):
    pass


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc",) \
                and ".ipynb_checkpoints" not in path.parts:
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def fingerprint() -> dict:
    """What must be identical on the coordinator and on every worker."""
    import dask
    import distributed
    import nbgrader
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "nbgrader": nbgrader.__version__,
             "dask": dask.__version__, "distributed": distributed.__version__}
    found.update({name: _tree_hash(folder) for name, folder in _FINGERPRINT_FILES.items()})
    return found


def worker_ready() -> dict:
    """Run on each worker by the coordinator: its fingerprint, and whether it can start processes."""
    import multiprocessing

    return {"fingerprint": fingerprint(), "daemon": multiprocessing.current_process().daemon}


def check_workers(client, mine: dict | None = None) -> int:
    """Refuse a cluster whose workers differ from this machine (or cannot start
    processes); return the number of workers."""
    mine = mine or fingerprint()
    try:
        reports = client.run(worker_ready)
    except Exception as err:  # e.g. ModuleNotFoundError: the worker was not started in a course checkout
        raise VersionSkew(f"the workers cannot run the course's grading code ({type(err).__name__}: {err}); start "
                          "each one in a checkout of the same commit with `make dask-worker SCHEDULER=...`") from err
    if not reports:
        raise VersionSkew("the scheduler has no workers: start some with `dask worker SCHEDULER_ADDRESS`")
    problems = []
    for address, report in sorted(reports.items()):
        theirs = report["fingerprint"]
        differ = [f"{k} {theirs.get(k)} here {mine[k]}" if k in ("python", "torch", "nbgrader", "dask", "distributed")
                  else f"{k} files differ" for k in mine if theirs.get(k) != mine[k]]
        if differ:
            problems.append(f"{address}: {'; '.join(differ)}")
        if report["daemon"]:
            problems.append(f"{address}: the worker is a daemonic process and cannot start the grading sandbox; "
                            "start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    if problems:
        raise VersionSkew("refusing to grade on this cluster; each worker must run the same course checkout and "
                          "packages as this machine:\n  " + "\n  ".join(problems))
    return len(reports)


# ------------------------------------------------------------- task payload
def _pack(root: Path, paths) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            if (root / path).exists():
                tar.add(root / path, arcname=str(path))
    return buffer.getvalue()


def _unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def bundle(out: Path, student: str, assignment: str) -> bytes:
    """What a worker needs to grade one notebook of the course folder ``out``."""
    return _pack(out, [Path("submitted") / student / assignment, Path("template") / "gradebook.db",
                       Path("template") / "assignments" / assignment,
                       Path("collection-notes") / f"{student}__{assignment}.json"])


_WORKER_LOCK = threading.Lock()
_WORKER_ROOT: list = []


def _worker_root() -> Path:
    """One folder per worker process for its tasks, hidden from every grading kernel."""
    from grader.grade import seal

    with _WORKER_LOCK:
        if not _WORKER_ROOT:
            root = Path(tempfile.mkdtemp(prefix="vae-grade-worker-"))
            _WORKER_ROOT.append(root)
            seal.hide([ROOT / "grader", SOLUTIONS, ROOT / "tests", ROOT / ".git", ROOT / "build", root])
        return _WORKER_ROOT[0]


def threads_per_host(client) -> dict:
    """{host: grading threads the cluster runs there}: workers on one machine share its cores."""
    shares: dict = {}
    for info in client.scheduler_info().get("workers", {}).values():
        shares[info["host"]] = shares.get(info["host"], 0) + max(1, int(info.get("nthreads", 1)))
    return shares


def grade_task(payload: bytes, student: str, assignment: str, expected: dict, shares: dict | None = None) -> dict:
    """Runs on a worker: grade one notebook as grader.grade.batch does locally;
    return the outcome and the attempt's gradebook and graded notebook.

    ``shares`` says how many grading threads run on each host: the kernel
    gets this machine's CPU budget divided by them (two workers on two cores
    get one thread each; two threads each oversubscribed the cores and made
    torch's OpenMP threads spin, 0.71x serial in `make bench`)."""
    from grader.grade import attempt
    from vaelab.runtime import cpu_budget

    mine = fingerprint()
    if mine != expected:
        differ = sorted(k for k in mine if mine[k] != expected.get(k))
        raise VersionSkew(f"worker {platform.node()} differs from the coordinator in {', '.join(differ)}")
    try:
        from distributed import get_worker

        worker = get_worker()
        threads = max(1, worker.state.nthreads)
        host = worker.address.rsplit(":", 1)[0].split("://")[-1]
    except (ImportError, ValueError, AttributeError):
        threads, host = 1, ""
    attempt.THREADS_PER_JOB = max(1, cpu_budget() // max(threads, (shares or {}).get(host, 1)))
    course = Path(tempfile.mkdtemp(prefix="course-", dir=_worker_root()))
    try:
        _unpack(payload, course)
        (course / "solutions").symlink_to(SOLUTIONS)
        outcome = attempt.grade_one(course, student, assignment)
        work = outcome.work
        results = b""
        if outcome.ok:
            results = _pack(work, [Path("gradebook.db"), Path("autograded") / student / assignment])
        attempt.discard(work)
        record = asdict(outcome)
        return {"outcome": record, "results": results, "worker": platform.node()}
    finally:
        shutil.rmtree(course, ignore_errors=True)


# -------------------------------------------------------------- coordinator
def connect(address: str):
    from distributed import Client

    try:
        return Client(address, timeout="10s")
    except OSError as err:
        raise ConnectionError(f"no Dask scheduler answers at {address} ({err}); start one with "
                              f"`dask scheduler` and workers with `dask worker {address}`") from err


def submit_all(client, out: Path, todo: list, expected: dict):
    """Submit one task per (student, assignment); yield (pair, result-or-exception) as they finish."""
    from distributed import as_completed

    shares = threads_per_host(client)
    futures = {}
    for student, assignment in todo:
        key = f"grade-{student}-{assignment}-{os.getpid()}-{len(futures)}"
        future = client.submit(grade_task, bundle(out, student, assignment), student, assignment, expected, shares,
                               key=key, pure=False, retries=1)
        futures[future] = (student, assignment)
    for future in as_completed(list(futures)):
        pair = futures[future]
        try:
            yield pair, future.result()
        except Exception as err:  # a task that failed everywhere (KilledWorker, skew): one notebook, not the batch
            yield pair, err
        finally:
            future.release()


def receive(out: Path, result: dict):
    """Turn a worker's answer into a local Outcome whose ``work`` folder holds its results."""
    from grader.grade.attempt import Outcome, new_worker_dir

    outcome = Outcome(**result["outcome"])
    work = new_worker_dir(out, outcome.student, outcome.assignment)
    work.mkdir(parents=True)
    if result["results"]:
        _unpack(result["results"], work)
    outcome.work = work
    return outcome


# ------------------------------------------------------- loopback cluster
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackCluster:
    """A scheduler and workers on this machine, started with `make dask-scheduler` and
    `make dask-worker` as an instructor would, each in a process group of its own
    (ended by close()). For the tests and `make bench`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.processes: list = []
        try:
            self._start("dask-scheduler", ["--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                           "--no-dashboard"], "scheduler")
            self.workers = [self.add_worker(f"w{i}") for i in (1, 2)]
            self.wait_for_workers(2)
        except BaseException:
            self.close()  # a fixture that fails in set-up gets no teardown
            raise

    def _start(self, target, dask_args, name, **make_vars):
        """`make dask-scheduler` / `make dask-worker`, as an instructor starts them."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = open(self.folder / f"{name}.log", "w")
        command = ["make", "--no-print-directory", "-s", "-C", str(ROOT), target, f"DASK_ARGS={' '.join(dask_args)}",
                   *[f"{k}={v}" for k, v in make_vars.items()]]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, cwd=self.folder)
        log.close()
        self.processes.append(process)
        return process

    def add_worker(self, name):
        return self._start("dask-worker", ["--no-dashboard", "--name", name, "--local-directory",
                                           str(self.folder / name)], name, SCHEDULER=self.address)

    def wait_for_workers(self, n, timeout=120.0):
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def n_workers(self) -> int:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            return len(client.scheduler_info()["workers"])

    def kill(self, process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(process)
