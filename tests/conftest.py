import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the grader package lives at the repository root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Data caches go to a per-session temporary folder, never ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "vaelab-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("VAELAB_CACHE", str(cache))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("VAELAB_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # figures made in the test process itself draw off-screen


@pytest.fixture(scope="session")
def solution01():
    from grader.notebooks import exec_solution

    return exec_solution(ROOT / "solutions" / "01_elbo" / "01_elbo.ipynb")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report as ``item.rep_<phase>`` (fixtures save
    artefacts when the test body failed)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_sessionfinish(session, exitstatus):
    """Grading processes the tests ended outright (a killed Dask worker) leave
    kernel homes and cgroups that the next batch would remove: remove them now."""
    from grader.grade import seal

    seal.sweep_dead_batches()
