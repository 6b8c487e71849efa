"""``make grade SCHEDULER=...``: grading on a real Dask cluster on loopback.

The module starts ``dask scheduler`` and two ``dask worker`` processes (each
in a process group of its own, ended at the end), grades twelve notebooks of
01 and 02 (correct, wrong, blank, and three hostile ones: a loop, a memory
bomb, os._exit) into PostgreSQL, and checks that grades.csv equals the local
run's; then kills one worker mid-batch and checks the grades again.
"""
from __future__ import annotations

import csv
import os
import socket
import threading
import time

import pytest

from grader import SOLUTIONS

from grader.grade import cluster
from grader.grade.batch import main as grade_main
from grader.author.mutants import catalogue
from grader.notebooks import defined_names, is_solution, make_submission, read

from .adversarial import CASES, GOOD, HALF
from .test_postgres import postgres  # noqa: F401 (a fixture: a PostgreSQL server of the test's own)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    running = cluster.LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield running
    finally:
        running.close()


def _answers(assignment):
    return {n: c.source for c in read(SOLUTIONS / assignment / f"{assignment}.ipynb").cells if is_solution(c)
            for n in defined_names(c.source)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Twelve notebooks: 01 correct, wrong, blank and three hostile; 02 correct, blank and four mutants."""
    subs = tmp_path_factory.mktemp("subs")
    make_submission("01_elbo", GOOD, subs, "good")
    make_submission("01_elbo", {**GOOD, "kl_standard_normal": HALF}, subs, "half")
    make_submission("01_elbo", {}, subs, "blank")
    for name in ("infinite_loop", "memory_bomb", "os_exit"):
        make_submission("01_elbo", CASES[name][0], subs, name.replace("_", ""))
    solution02 = _answers("02_reparameterization")
    make_submission("02_reparameterization", solution02, subs, "good")
    make_submission("02_reparameterization", {}, subs, "blank")
    for i, m in enumerate(catalogue("02_reparameterization")[:4]):
        make_submission("02_reparameterization", {**solution02, m.target: m.source}, subs, f"mutant{i}")
    assert sum(1 for _ in subs.glob("*/*/*.ipynb")) == 12
    return subs


@pytest.fixture(scope="module")
def local(batch, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert grade_main([str(batch), "--out", str(out), "--jobs", "2"]) == 0
    return out


def _grades(out):
    with open(out / "grades.csv") as fh:
        return sorted((r["student_id"], r["assignment"], float(r["score"]), float(r["max_score"]), r["status"])
                      for r in csv.DictReader(fh))


@pytest.mark.skipif(not os.environ.get("VAELAB_TEST_FULL"),
                    reason="the undisturbed cluster run is in `make test-full`; CI runs the one with a killed worker")
def test_a_cluster_grades_exactly_as_one_machine_does(dask_cluster, batch, local, tmp_path, capsys):
    out = tmp_path / "cluster"
    assert grade_main([str(batch), "--out", str(out), "--scheduler", dask_cluster.address]) == 0
    assert "Dask cluster at" in capsys.readouterr().out
    assert _grades(out) == _grades(local)
    assert all(p.poll() is None for p in dask_cluster.workers)  # the hostile notebooks took no worker down


def test_a_worker_killed_mid_batch_into_postgresql_costs_nothing(dask_cluster, batch, local, tmp_path, capsys,
                                                                 postgres):
    """Twelve notebooks on two workers, the gradebook in PostgreSQL; one worker
    (nanny and all) is killed once two notebooks are done. grades.csv must
    equal the local run's; the surviving worker outlives the hostile
    notebooks; the same command then resumes with nothing left to grade."""
    out = tmp_path / "killed"
    result = {}
    command = [str(batch), "--out", str(out), "--scheduler", dask_cluster.address, "--db-url", postgres]
    run = threading.Thread(target=lambda: result.update(code=grade_main(command)))
    run.start()
    deadline = time.monotonic() + 300
    while len(list((out / "done").glob("*.json"))) < 2 and time.monotonic() < deadline and run.is_alive():
        time.sleep(0.2)
    victim, survivor = dask_cluster.workers
    assert run.is_alive(), "the batch ended before a worker could be killed"
    dask_cluster.kill(victim)  # the worker and its nanny, with whatever notebook it was grading
    run.join(timeout=600)
    assert not run.is_alive() and result.get("code") == 0
    printed = capsys.readouterr().out
    assert "Dask cluster at" in printed and "2 worker(s)" in printed and "PostgreSQL" in printed
    assert len(list((out / "done").glob("*.json"))) == 12
    assert _grades(out) == _grades(local)  # nothing lost, nothing written twice
    assert sum(1 for row in _grades(out) if row[4] != "no submission") == 12
    assert survivor.poll() is None  # a loop, a memory bomb and os._exit did not take it down
    # a replacement joins; resuming on this cluster finds nothing to grade
    dask_cluster.workers[0] = dask_cluster.add_worker("w3")
    dask_cluster.wait_for_workers(2)
    assert grade_main(command) == 0
    assert "Resuming: 12 notebook(s)" in capsys.readouterr().out


# --- without a cluster ---------------------------------------------------------------------

class _FakeClient:
    def __init__(self, reports):
        self.reports = reports

    def run(self, fn):
        return self.reports


def test_version_skew_and_daemonic_workers_are_refused_by_name():
    mine = cluster.fingerprint()
    skewed = {**mine, "torch": "2.0.0", "solutions": "0" * 16}
    client = _FakeClient({"tcp://10.0.0.5:4000": {"fingerprint": skewed, "daemon": False},
                          "tcp://10.0.0.6:4000": {"fingerprint": mine, "daemon": True},
                          "tcp://10.0.0.7:4000": {"fingerprint": mine, "daemon": False}})
    with pytest.raises(cluster.VersionSkew) as err:
        cluster.check_workers(client, mine)
    text = str(err.value)
    assert "tcp://10.0.0.5:4000: torch 2.0.0 here " + mine["torch"] in text and "solutions files differ" in text
    assert "tcp://10.0.0.6:4000" in text and "DASK_DISTRIBUTED__WORKER__DAEMON=False" in text
    assert "10.0.0.7" not in text
    assert cluster.check_workers(_FakeClient({"w": {"fingerprint": mine, "daemon": False}}), mine) == 1
    with pytest.raises(cluster.VersionSkew, match="no workers"):
        cluster.check_workers(_FakeClient({}), mine)


def test_a_task_refuses_a_coordinator_with_other_files(tmp_path):
    expected = {**cluster.fingerprint(), "grader": "f" * 16}
    with pytest.raises(cluster.VersionSkew, match="grader"):
        cluster.grade_task(b"", "ann", "01_elbo", expected)


def test_no_scheduler_gives_a_clear_error(tmp_path, capsys):
    subs = tmp_path / "subs"
    make_submission("01_elbo", GOOD, subs, "ann")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = grade_main([str(subs), "--out", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 2
    assert "no Dask scheduler answers" in capsys.readouterr().err
