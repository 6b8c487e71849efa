"""`make test-binder`: a replica of the Binder student image under Binder's limits.

1. build a clean virtual environment from binder/environment.yml's own package
   list (PyTorch by the exact version of its CPU-only `pytorch-cpu` entry);
2. install vaelab the way binder/postBuild does (`pip install --no-deps -e .`);
3. run every solution notebook under a real 1-CPU quota, as Binder's
   containers have it (a CFS quota seen through the container's cgroup view,
   tests/cpu_quota.py; all cores stay visible and no thread count is forced,
   so vaelab's own choice is what is measured), or on one core with taskset
   where no cgroup can be made, with a 2 GB address-space cap
   (prlimit/RLIMIT_AS), recording wall time and the kernel's peak RSS;
4. fail if any notebook errors or needs more than the cap.

Results go to build/binder-report.json and are printed as a table.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "binder-venv"
CAP_BYTES = 2 * 1024**3


def binder_packages() -> list:
    text = (ROOT / "binder" / "environment.yml").read_text()
    torch_version = re.search(r"^\s*- pytorch-cpu=([0-9.]+)\s*$", text, re.M).group(1)
    pins = re.findall(r"^\s*- ([A-Za-z0-9_.\-]+==[^\s#]+)", text, re.M)
    return [f"torch=={torch_version}", *pins]


def build_env() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".binder-packages"
    wanted = "\n".join(binder_packages())
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        packages = wanted.splitlines()
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", packages[0]], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages[1:], "nbclient"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)], check=True)
        stamp.write_text(wanted)
    return python


RUNNER = r"""
import json, sys, time, nbformat
from pathlib import Path
from nbclient import NotebookClient
path = Path(sys.argv[1])
nb = nbformat.read(str(path), as_version=4)
client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
start = time.perf_counter()
errors = []
with client.setup_kernel():
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            try:
                client.execute_cell(cell, i)
            except Exception as err:
                errors.append(f"cell {cell.get('id')}: {type(err).__name__}: {str(err)[-300:]}")
                break
            failed = [line for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                      for line in o.get("text", "").splitlines() if "\u2717" in line]
            if failed:  # a self-check that fails on the reference solution
                errors.append(f"cell {cell.get('id')}: self-check failed: {failed[0][:200]}")
    status = Path(f"/proc/{client.km.provisioner.process.pid}/status").read_text()
    probe = nbformat.v4.new_code_cell("import torch; print(torch.get_num_threads())")
    nb.cells.append(probe)
    try:
        client.execute_cell(probe, len(nb.cells) - 1)
        threads = int(probe.outputs[0]["text"].strip())
    except Exception:
        threads = None
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak, "errors": errors,
                  "kernel_threads": threads}))
"""


def run(python: Path, notebook: Path, quota=None) -> dict:
    prefix, limits = [], []
    if quota is not None:
        prefix += quota.prefix()
        limits.append(quota.describe())
    elif shutil.which("taskset"):
        prefix += ["taskset", "-c", "0"]
        limits.append("taskset 1 CPU (no cgroup quota here)")
    if shutil.which("prlimit"):
        prefix += ["prlimit", f"--as={CAP_BYTES}"]
        limits.append("prlimit --as 2 GB")
    env = dict(os.environ, MPLBACKEND="Agg", PATH=f"{python.parent}:{os.environ['PATH']}")
    for name in ("VAELAB_HIDDEN_REFERENCES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VAELAB_THREADS"):
        env.pop(name, None)  # Binder forces none of these: vaelab sizes its threads from the quota
    start = time.perf_counter()
    result = subprocess.run([*prefix, str(python), "-c", RUNNER, str(notebook)], capture_output=True, text=True,
                            env=env, cwd=str(notebook.parent))
    try:
        record = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        record = {"seconds": time.perf_counter() - start, "peak_rss_mb": float("nan"),
                  "errors": [f"runner failed: {result.stderr[-500:]}"]}
    record["notebook"] = notebook.name
    record["limits"] = " + ".join(limits)
    return record


def main() -> int:
    python = build_env()
    notebooks = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    sys.path.insert(0, str(ROOT))
    from tests import cpu_quota

    if cpu_quota.available():
        with cpu_quota.QuotaGroup(1.0) as quota:
            records = [run(python, nb, quota) for nb in notebooks]
    else:
        records = [run(python, nb) for nb in notebooks]
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "binder-report.json").write_text(json.dumps(records, indent=2))
    print(f"{'notebook':<30} {'seconds':>8} {'peak RSS MB':>12} {'threads':>8}  limits")
    failed = False
    for r in records:
        print(f"{r['notebook']:<30} {r['seconds']:8.1f} {r['peak_rss_mb']:12.0f} {str(r.get('kernel_threads')):>8}  "
              f"{r['limits']}")
        for e in r["errors"]:
            print(f"   ERROR {e}")
        failed |= bool(r["errors"]) or not (r["peak_rss_mb"] * 1024**2 <= CAP_BYTES)
    print("binder replica: " + ("FAILED" if failed else "all notebooks ran within 1 CPU and 2 GB"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
