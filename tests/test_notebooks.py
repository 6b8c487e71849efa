"""Every solution and every released notebook runs top to bottom.

Solutions must run without a single error output. Released notebooks (blank
TODOs) must also finish without errors: demo cells guard student functions
with ``needs(...)``, so "Run All" on a fresh notebook never stops half-way.
"""
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient

import grader

pytestmark = pytest.mark.slow


def _browser_runs_them():
    """The browser suite (tests/test_browser.py) runs every one of these notebooks with Run All in
    JupyterLab and checks the same things, so CI runs them once, there; `make test-full` runs both."""
    from tests import labdriver

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return labdriver.chromium_path() is not None and not os.environ.get("VAELAB_TEST_FULL")


NOTEBOOKS = [(kind, name) for name in grader.assignments() for kind in ("solutions", "assignments")]


def execute(path, timeout=600):
    nb = nbformat.read(str(path), as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, time.perf_counter() - start


@pytest.mark.parametrize("kind,name", NOTEBOOKS, ids=[f"{k}/{n}" for k, n in NOTEBOOKS])
def test_notebook_runs_without_errors(kind, name, tmp_path, monkeypatch):
    if _browser_runs_them():
        pytest.skip("run in JupyterLab by tests/test_browser.py (both run in `make test-full`)")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, so figures are captured
    monkeypatch.chdir(tmp_path)  # no hidden references above the working dir...
    monkeypatch.setenv("VAELAB_HIDDEN_REFERENCES", str(grader.HIDDEN_REFERENCES))  # ...but grading cells find them
    path = grader.ROOT / kind / name / f"{name}.ipynb"
    nb, seconds = execute(path)
    errors = [(c.get("id"), o.get("ename"), o.get("evalue", "")[:200]) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    if kind == "solutions":
        assert errors == []
        text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert "✗" not in text, "a self-check fails on the reference solution"
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
        assert images, "the solution notebook should draw its figures"
    else:
        # only the hidden-test cells (which the student never sees run) may fail
        allowed = {c.get("id") for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
        assert [e for e in errors if e[0] not in allowed] == []
    print(f"{kind}/{name}: {seconds:.1f} s")
