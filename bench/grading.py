"""Grading figures: our `make grade` path against plain `nbgrader autograde`
executing the notebooks as written, and serial against JOBS=2."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from grader import SOLUTIONS
from grader.grade.batch import main as grade_main
from grader.grade.batch import prepare_course
from grader.notebooks import defined_names, is_solution, make_submission, read


def make_submissions(folder: Path, students: int, names) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    for name in names:
        answers = {n: c.source for c in read(SOLUTIONS / name / f"{name}.ipynb").cells if is_solution(c)
                   for n in defined_names(c.source)}
        for s in range(students):
            make_submission(name, answers, folder, f"student{s + 1:02d}")
    return folder


def ours(subs: Path, out: Path, jobs: int = 1, scheduler: str | None = None) -> dict:
    if out.exists():
        shutil.rmtree(out)
    start = time.perf_counter()
    assert grade_main([str(subs), "--out", str(out), "--jobs", str(jobs)] +
                      (["--scheduler", scheduler] if scheduler else [])) == 0
    wall = time.perf_counter() - start
    per_student: dict = {}
    for done in (out / "done").glob("*.json"):
        record = json.loads(done.read_text())
        per_student[record["student"]] = per_student.get(record["student"], 0.0) + record["seconds"]
    batch = json.loads((out / "batch.json").read_text())
    return {"wall": wall, "batch_seconds": batch["seconds"],
            "median_per_submission": statistics.median(per_student.values()), "students": len(per_student)}


def plain_nbgrader(subs: Path, out: Path, names) -> dict:
    """Stock `nbgrader autograde`, one process per assignment over all students, notebooks run as written."""
    if out.exists():
        shutil.rmtree(out)
    prepare_course(out, list(names))
    shutil.copytree(subs, out / "submitted")
    env = dict(os.environ, VAELAB_FULL_RUN="1", MPLBACKEND="Agg",
               VAELAB_HIDDEN_REFERENCES=str(Path(__file__).resolve().parent.parent / "grader" / "references"))
    start = time.perf_counter()
    for name in names:
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--create", "--force",
                        "--ExecutePreprocessor.timeout=1800", "--Execute.timeout=1800"],
                       cwd=out, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    students = len([p for p in subs.iterdir() if p.is_dir()])
    return {"wall": wall, "per_submission": wall / students}
