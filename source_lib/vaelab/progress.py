"""``make progress``: which self-checks pass, across every notebook.

    python -m vaelab.progress [--root .] [--timeout 60] [01_elbo ...]

prints one line per TODO of every notebook under ``<root>/assignments``::

    01_elbo  kl_standard_normal  passes
    01_elbo  elbo_linear_gaussian  not yet (case 1/2 (all symbols): ...)
    03_vae   train_step          not attempted

Each notebook runs in a fresh kernel on a scratch copy (your notebooks are
never modified), in the short configuration that grading uses
(``NBGRADER_EXECUTION``). Only what the self-checks need runs: the cells up
to the last self-check, leaving out the ``demo`` cells (plots, training runs)
and the hidden-test cells. A cell of your own gets 10 s, as when grading.
Ctrl-C stops it; no kernel is left running.

A TODO is *not attempted* while its cell still raises the released
``NotImplementedError``, *passes* when its self-check passes, and *not yet*
otherwise, with the first line of what the self-check says.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["notebook_progress", "first_failure", "format_rows", "main"]

MARK = "VAELAB-PROGRESS "
STUB = "raise NotImplementedError"
OWN_CELL_TIMEOUT = float(os.environ.get("VAELAB_EXTRA_CELL_TIMEOUT", "10"))
WRITTEN_STUBS = ("", "YOUR ANSWER HERE")
_HERE = "__import__('vaelab.progress', fromlist=['_'])"  # the probes' handle on this module, in the kernel

# ----------------------------------------------------------- in the kernel
_REPORTS: dict = {}


def _recording(check):
    """Wrap the notebook's ``check`` so that its report can be read back."""
    if getattr(check, "_vaelab_progress", False):
        return check

    def recording_check(name, fn, **kwargs):
        report = check(name, fn, **kwargs)
        _REPORTS[name] = report
        return report

    recording_check._vaelab_progress = True
    return recording_check


def first_failure(report) -> str:
    """The first line of what a failing self-check says, without its mark and name."""
    results = list(report.results)
    for i, r in enumerate(results, 1):
        if not r.passed:
            return f"case {i}/{len(results)} ({r.label}): {r.detail}" if r.label else r.detail
    return "no cases were run"


def _emit(name: str) -> None:
    """Print what the self-check of ``name`` found, as one marked JSON line."""
    report = _REPORTS.pop(name, None)
    if report is None:
        verdict = {"status": None}
    elif report.passed:
        predicted = any(r.detail.startswith("your prediction") for r in report.results)
        verdict = {"status": "passes", "message": "a prediction: recorded; the hidden test grades it" if predicted else ""}
    else:
        results = list(report.results)
        stub = bool(results) and all(r.detail.startswith("not implemented yet") for r in results)
        verdict = {"status": "stub" if stub else "not yet", "message": first_failure(report)}
    print(MARK + json.dumps(verdict), flush=True)


# ------------------------------------------------------------- the driver
def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", []) or []


def _is_todo(cell) -> bool:
    return cell.cell_type == "code" and _nbg(cell).get("solution", False) and not _nbg(cell).get("grade", False)


def _is_written(cell) -> bool:
    return cell.cell_type == "markdown" and _nbg(cell).get("solution", False)


def _runs(cell) -> bool:
    """Whether a cell runs before the self-checks: not a ``demo``, not a hidden test."""
    if cell.cell_type != "code" or "demo" in _tags(cell):
        return False
    nbg = _nbg(cell)
    return not (nbg.get("grade") and not nbg.get("solution"))


def _own(cell) -> bool:
    """A cell the student added (neither nbgrader metadata nor a release tag)."""
    return not _nbg(cell) and not {"given", "demo"} & set(_tags(cell))


def _error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            value = re.sub(r"\(\d+\.py, line (\d+)\)", r"(line \1 of the cell)", out.get("evalue") or "")
            value = value.strip().splitlines()
            return f"{out.get('ename', 'Error')}: {value[0][:120]}" if value else out.get("ename", "Error")
    return None


def _verdict(cell) -> dict | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            for line in out.get("text", "").splitlines():
                if line.startswith(MARK):
                    return json.loads(line[len(MARK):])
    return None


def _short(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def notebook_progress(path: Path, timeout: float = 60.0) -> list:
    """``[(todo name, kind, status, message)]`` for one notebook, run in a
    fresh kernel on a scratch copy of its folder. ``kind`` is ``code`` (a TODO
    with a self-check), ``unchecked`` (one without) or ``written`` (an answer
    graded by hand); status ``passes``, ``not yet`` or ``not attempted``
    (``answered`` for a written answer that is no longer blank)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(str(path), as_version=4)
    cells = nb.cells
    ids = [str(_nbg(c).get("grade_id", "")) for c in cells]
    checks = {i for i, g in enumerate(ids) if g.startswith("check-")}
    todos = [g for c, g in zip(cells, ids) if _is_todo(c)]
    results = {g: ("answered" if c.source.strip() not in WRITTEN_STUBS else "not attempted", "graded by hand")
               for c, g in zip(cells, ids) if _is_written(c)}
    last = max([i for i, g in enumerate(ids) if g in todos or i in checks and g[len("check-"):] in todos], default=-1)

    # the plan: the cells that run, with a probe around each self-check
    plan, roles = nbformat.v4.new_notebook(metadata=nb.metadata), []
    for i, cell in enumerate(cells[: last + 1]):
        if not _runs(cell):
            continue
        name = ids[i][len("check-"):] if i in checks else ids[i]
        if i in checks:
            plan.cells.append(nbformat.v4.new_code_cell(f"check = {_HERE}._recording(check)"))
            roles.append(("setup", name, timeout))
        plan.cells.append(nbformat.v4.new_code_cell(cell.source))
        role = "todo" if _is_todo(cell) else "check" if i in checks else "cell"
        roles.append((role, name, OWN_CELL_TIMEOUT if _own(cell) else timeout))
        if i in checks:
            plan.cells.append(nbformat.v4.new_code_cell(f"{_HERE}._emit({name!r})"))
            roles.append(("probe", name, timeout))

    env = dict(os.environ, NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg")
    for var in ("VAELAB_FULL_RUN", "VAELAB_SEALED_RESULTS"):
        env.pop(var, None)
    errors = {}
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    with tempfile.TemporaryDirectory(prefix="vaelab-progress-") as tmp:
        folder = Path(tmp) / path.parent.name
        shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "checkpoints"))
        client = NotebookClient(plan, timeout=timeout, kernel_name=kernel, allow_errors=True,
                                interrupt_on_timeout=True, resources={"metadata": {"path": str(folder)}})
        # setup_kernel shuts the kernel down on every way out once the kernel is up; a Ctrl-C while it is
        # still starting escapes nbclient's own clean-up, so _shut_down makes sure of it
        with _shut_down(client), client.setup_kernel(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            try:
                for index, (cell, (role, name, seconds)) in enumerate(zip(plan.cells, roles)):
                    client.timeout = max(1, int(seconds))
                    start = time.perf_counter()
                    client.execute_cell(cell, index)
                    slow = time.perf_counter() - start >= seconds
                    if role in ("todo", "check"):
                        what = "the TODO cell" if role == "todo" else "the self-check"
                        errors[(role, name)] = f"{what} ran over {seconds:g} s" if slow else _error(cell)
                    elif role == "probe":
                        results[name] = _classify(name, _verdict(cell), errors, cells)
            except DeadKernelError:  # the rest cannot run: say where it stopped
                died = (cell.source.strip().splitlines() or [""])[0]
                for name in todos:
                    results.setdefault(name, ("not yet", f"the kernel died while running `{_short(died, 50)}`"))
    checked = {ids[i][len("check-"):] for i in checks}
    return [(g, "written" if g not in todos else "code" if g in checked else "unchecked",
             *results.get(g, ("no self-check", ""))) for g in ids if g in todos or g in results]


@contextlib.contextmanager
def _shut_down(client):
    """End the client's kernel on every way out, even one that interrupts its start."""
    try:
        yield
    finally:
        km = getattr(client, "km", None)
        try:
            if km is not None and km.has_kernel:
                from jupyter_core.utils import run_sync

                run_sync(km.shutdown_kernel)(now=True)
        except BaseException:  # a second Ctrl-C, a half-started kernel: kill the process itself
            process = getattr(getattr(km, "provisioner", None), "process", None)
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def _classify(name: str, verdict: dict | None, errors: dict, cells) -> tuple:
    """passes / not attempted / not yet, from the probe's verdict and the errors of the TODO and check cells."""
    source = next((c.source for c in cells if _is_todo(c) and _nbg(c).get("grade_id") == name), "")
    todo_error, check_error = errors.get(("todo", name)), errors.get(("check", name))
    if verdict and verdict["status"] == "passes":
        return "passes", verdict.get("message", "")
    if verdict and verdict["status"] == "stub":
        return ("not attempted", "") if STUB in source else ("not yet", verdict["message"])
    if verdict and verdict["status"] == "not yet":
        return "not yet", verdict["message"]
    if todo_error and "NotImplementedError" in todo_error and STUB in source:
        return "not attempted", ""
    return "not yet", todo_error or check_error or "the self-check did not run"


def format_rows(notebook: str, rows: list, width: int = 0) -> list:
    """The printed lines of one notebook's rows (``notebook_progress``), the
    notebook's name padded to ``width``."""
    names = max((len(r[0]) for r in rows), default=0)
    lines = []
    for name, _kind, status, message in rows:
        text = f"{status} ({_short(message)})" if message else status
        lines.append(f"{notebook:<{width}}  {name:<{names}}  {text}")
    return lines


def _notebooks(root: Path, names: list) -> list:
    base = root / "assignments" if (root / "assignments").is_dir() else root
    found = sorted(p for p in base.glob("*/*.ipynb") if p.stem == p.parent.name)
    if names:
        found = [p for p in found if p.stem in names]
    return found


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("names", nargs="*", help="only these notebooks (e.g. 01_elbo); default: all")
    parser.add_argument("--root", type=Path, default=Path("."), help="the course folder (holding assignments/)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per cell of the notebook (default 60)")
    args = parser.parse_args(argv)
    notebooks = _notebooks(args.root.resolve(), args.names)
    if not notebooks:
        print(f"no notebooks under {args.root.resolve() / 'assignments'}/")
        return 1
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    # and Ctrl-C works even when started from something that ignores it (a background job, some IDEs)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    width = max(len(p.stem) for p in notebooks)
    passed = total = 0
    begin = time.perf_counter()
    try:
        for path in notebooks:
            start = time.perf_counter()
            try:
                rows = notebook_progress(path, args.timeout)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # a notebook that cannot run: say so, go on with the next
                print(f"{path.stem}  could not be run: {_short(f'{type(err).__name__}: {err}')}", flush=True)
                continue
            print("\n".join(format_rows(path.stem, rows, width)), flush=True)
            ok = sum(r[1] == "code" and r[2] == "passes" for r in rows)
            checked = sum(r[1] == "code" for r in rows)
            passed, total = passed + ok, total + checked
            print(f"{path.stem:<{width}}  {ok} of {checked} self-checks pass, "
                  f"{time.perf_counter() - start:.1f} s\n", flush=True)
    except KeyboardInterrupt:
        # the interrupted cell's task ends with "kernel died" once its kernel is shut down: not news
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("\ninterrupted: every kernel has been shut down", flush=True)
        return 130
    print(f"{passed} of {total} self-checks pass across {len(notebooks)} notebook{'s' * (len(notebooks) != 1)} "
          f"({time.perf_counter() - begin:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
