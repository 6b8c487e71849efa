"""Cost of hostile input and of the thread choice.

- ``hostile_notebook_cost_ratio``: seconds to grade a submission whose TODO
  never returns (tests/hostile.py) over seconds for the honest solution, per
  assignment, with the default limits; the row is the worst assignment.
- ``threads_under_quota_ratio``: one training step of a 784-400-40 MLP under
  a real 1-CPU quota (tests/cpu_quota.py) with the thread count vaelab picks,
  over the best fixed thread count (1 or the visible core count).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader import ROOT
from grader.grade.batch import main as grade_main
from grader.notebooks import make_submission


def hostile_costs(tmp: Path, names) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests import hostile

    subs, out = tmp / "hostile-subs", tmp / "hostile-out"
    for folder in (subs, out):
        shutil.rmtree(folder, ignore_errors=True)
    chosen = {}
    for (assignment, student), (answers, _) in hostile.submissions().items():
        if assignment in names and student != "hostile-two-bad-todos":
            make_submission(assignment, answers, subs, student)
            make_submission(assignment, hostile.solution_answers(assignment), subs, "honest")
            chosen[assignment] = student
    assert grade_main([str(subs), "--out", str(out)]) == 0
    ratios = {}
    for assignment, student in chosen.items():
        bad = json.loads((out / "done" / f"{student}__{assignment}.json").read_text())["seconds"]
        good = json.loads((out / "done" / f"honest__{assignment}.json").read_text())["seconds"]
        ratios[assignment] = (bad, good, bad / good)
    return ratios


STEP = r"""
import sys, time, torch
import vaelab
choice = torch.get_num_threads()
if sys.argv[1] != "vaelab":
    torch.set_num_threads(int(sys.argv[1]))
model = torch.nn.Sequential(torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 40))
opt = torch.optim.Adam(model.parameters())
x = torch.rand(128, 784)
def step():
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
for _ in range(20):
    step()
start = time.perf_counter()
for _ in range(400):  # the mean over a run of seconds, so quota throttling counts (a median would hide it)
    step()
print(choice, torch.get_num_threads(), (time.perf_counter() - start) / 400 * 1000)
"""


def threads_under_quota() -> dict | None:
    sys.path.insert(0, str(ROOT))
    from tests import cpu_quota

    if not cpu_quota.available():
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "VAELAB_THREADS")}
    result = {}
    with cpu_quota.QuotaGroup(1.0) as group:
        for _ in range(3):  # interleaved rounds; the best median of each setting counts
            for setting in ("vaelab", "1", str(os.cpu_count())):
                done = subprocess.run(group.prefix() + [sys.executable, "-c", STEP, setting], capture_output=True,
                                      text=True, env=env, timeout=600)
                choice, used, ms = done.stdout.split()
                if setting not in result or float(ms) < result[setting]["ms"]:
                    result[setting] = {"threads": int(used), "ms": float(ms), "vaelab_choice": int(choice)}
        result["describe"] = group.describe()
    best = min(result["1"]["ms"], result[str(os.cpu_count())]["ms"])
    result["ratio"] = result["vaelab"]["ms"] / best
    return result
