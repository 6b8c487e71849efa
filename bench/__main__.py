"""Run the benchmarks, write docs/benchmarks.md and print one
``BENCH <name> <value> <unit>`` line per figure.

    python -m bench            # full run (tens of minutes on a 2-core CPU)
    python -m bench --quick    # reduced sizes, under 3 minutes: a smoke test of this code
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

from bench import browser, grading, hostile, notebooks, training
from grader import ROOT, assignments

GOALS = {
    "train_speedup_vs_canonical": ("≥", 1.3), "train_fraction_of_gemm_ceiling": ("≥", 0.8),
    "autograde_seconds_per_submission": ("≤", 20), "autograde_speedup_vs_plain_nbgrader": ("≥", 5),
    "notebook_max_seconds": ("≤", 90), "notebook_max_rss_mb": ("≤", 1536), "slider_update_ms": ("≤", 30),
    "grade_jobs2_speedup": ("report", None),
    "cluster_speedup": ("report", None),
    "hostile_notebook_cost_ratio": ("≤", 3), "threads_under_quota_ratio": ("≤", 1.1),
    "browser_slider_key_to_image_ms": ("≤", 100), "browser_class_key_to_image_ms": ("≤", 100), "gpu_epoch_seconds_60k": ("≤", 0.2),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}"


def versions() -> str:
    import nbclient
    import nbgrader
    import numpy
    import sympy

    return (f"torch {torch.__version__}, numpy {numpy.__version__}, sympy {sympy.__version__}, "
            f"nbgrader {nbgrader.__version__}, nbclient {nbclient.__version__}")


SECTIONS = ("training", "notebooks", "slider", "browser", "grading", "cluster", "hostile", "threads", "gpu")


def run_training(quick, names, results, notes):
    cpu = torch.device("cpu")
    print("[bench] training loop vs canonical loop", flush=True)
    t = training.speedup_vs_canonical(epochs=2 if quick else 4, device=cpu)
    results["train_speedup_vs_canonical"] = (t["speedup"], "x")
    notes.append(f"- training data: {t['data']}; {t['epochs']} alternating epochs each; median epoch "
                 f"{t['seconds_ours']:.2f} s (vaelab.fit) vs {t['seconds_canonical']:.2f} s (DataLoader loop); "
                 f"test negative ELBO {t['test_neg_elbo_ours']:.1f} (vaelab) vs {t['test_neg_elbo_canonical']:.1f} "
                 "(canonical, trained on continuous targets), both evaluated on dynamically binarized test images")
    g = training.fraction_of_gemm_ceiling(t, cpu)
    results["train_fraction_of_gemm_ceiling"] = (g["fraction"], "ratio")
    notes.append(f"- matmul throughput: training loop {g['achieved_gflops']:.1f} GFLOP/s, "
                 f"bare float32 GEMM at the same shapes {g['ceiling_gflops']:.1f} GFLOP/s")


def run_notebooks(quick, names, results, notes):
    print("[bench] notebooks top to bottom", flush=True)
    nb = notebooks.notebooks(names[:2] if quick else names)
    results["notebook_max_seconds"] = (max(r["seconds"] for r in nb), "s")
    results["notebook_max_rss_mb"] = (max(r["peak_rss_mb"] for r in nb), "MB")
    notes.append("- notebooks: " + "; ".join(f"{r['notebook']} {r['seconds']:.1f} s, {r['peak_rss_mb']:.0f} MB"
                                            for r in nb) + (" (quick: first two only)" if quick else ""))


def run_slider(quick, names, results, notes):
    print("[bench] latent explorer (kernel side)", flush=True)
    s = notebooks.slider_update_ms(50 if quick else 300)
    results["slider_update_ms"] = (s["median_ms"], "ms")
    notes.append(f"- slider update in the kernel (decode + PNG encode, {s['updates']} updates): "
                 f"median {s['median_ms']:.2f} ms")


def run_browser(quick, names, results, notes):
    if quick:
        notes.append("- browser latency: measured by the full `make bench` (CI presses the same keys in "
                     "tests/test_browser.py)")
        return
    print("[bench] latent explorer in JupyterLab + Chromium (key press to new image)", flush=True)
    b = browser.key_to_image(presses=30)
    if b is None:
        notes.append("- browser latency: not measured (no Chromium; `make browser` installs it)")
        return
    results["browser_slider_key_to_image_ms"] = (b["slider"]["median"], "ms")
    results["browser_class_key_to_image_ms"] = (b["class"]["median"], "ms")
    notes.append(f"- key press to new image in the page (JupyterLab {b['jupyterlab']}, {b['chromium']}, headless, "
                 f"same machine): latent slider ArrowRight median {b['slider']['median']:.0f} ms, "
                 f"90th percentile {b['slider']['p90']:.0f} ms over {b['slider']['n']} presses; CVAE class "
                 f"button Enter median {b['class']['median']:.0f} ms, 90th percentile {b['class']['p90']:.0f} ms "
                 f"over {b['class']['n']} presses; Run All of solutions/04 in the page {b['run_all_seconds']:.1f} s")


def run_grading(quick, names, results, notes):
    print("[bench] grading", flush=True)
    with tempfile.TemporaryDirectory(prefix="vae-bench-") as tmp:
        tmp = Path(tmp)
        grade_names = names[:1] if quick else names
        students = 1 if quick else 3
        subs = grading.make_submissions(tmp / "subs", students, grade_names)
        ours = grading.ours(subs, tmp / "ours")
        plain = grading.plain_nbgrader(subs, tmp / "plain", grade_names)
        results["autograde_seconds_per_submission"] = (ours["median_per_submission"], "s")
        results["autograde_speedup_vs_plain_nbgrader"] = (plain["per_submission"] / ours["median_per_submission"], "x")
        notes.append(f"- grading {students} submission(s) of {', '.join(grade_names)}: ours {ours['median_per_submission']:.1f} s "
                     f"per submission (isolated worker per notebook; demonstrations and self-checks not run, as in `make grade`; "
                     f"whole `make grade` wall "
                     f"{ours['wall']:.0f} s incl. course set-up, feedback and report); plain nbgrader "
                     f"{plain['per_submission']:.1f} s per submission (notebooks run as written)")
        subs8 = grading.make_submissions(tmp / "subs8", 4 if quick else 2, names[:1] if quick else names)
        serial = grading.ours(subs8, tmp / "serial", jobs=1)
        parallel = grading.ours(subs8, tmp / "jobs2", jobs=2)
        results["grade_jobs2_speedup"] = (serial["batch_seconds"] / parallel["batch_seconds"], "x")
        notes.append(f"- batch of {4 if quick else 8} notebooks: serial {serial['batch_seconds']:.1f} s, "
                     f"JOBS=2 {parallel['batch_seconds']:.1f} s (grading only; set-up excluded)")


def run_cluster(quick, names, results, notes):
    """Two loopback Dask workers against one serial job, on the same eight notebooks."""
    if quick:
        notes.append("- Dask cluster: measured by the full `make bench` (CI tests the cluster in tests/test_cluster.py)")
        return
    print("[bench] Dask cluster: 2 loopback workers vs serial", flush=True)
    from grader.grade.cluster import LoopbackCluster

    with tempfile.TemporaryDirectory(prefix="vae-bench-") as tmp:
        tmp = Path(tmp)
        subs = grading.make_submissions(tmp / "subs", 2, names)
        serial = grading.ours(subs, tmp / "serial", jobs=1)
        running = LoopbackCluster(tmp / "dask")
        try:
            on_cluster = grading.ours(subs, tmp / "cluster", scheduler=running.address)
        finally:
            running.close()
    speedup = serial["batch_seconds"] / on_cluster["batch_seconds"]
    per_notebook = serial["batch_seconds"] / (2 * len(names))
    results["cluster_speedup"] = (speedup, "x")
    notes.append(f"- Dask cluster on this machine (scheduler + 2 workers, 1 thread each, loopback): "
                 f"{2 * len(names)} notebooks serial {serial['batch_seconds']:.1f} s "
                 f"({per_notebook:.1f} s per notebook), on the cluster {on_cluster['batch_seconds']:.1f} s")


def run_hostile(quick, names, results, notes):
    print("[bench] hostile submissions: a TODO that never returns, default limits", flush=True)
    with tempfile.TemporaryDirectory(prefix="vae-bench-") as tmp:
        ratios = hostile.hostile_costs(Path(tmp), names[:1] if quick else names)
    results["hostile_notebook_cost_ratio"] = (max(r[2] for r in ratios.values()), "x")
    notes.append("- a looping TODO vs the honest solution, graded in one batch with the default limits: " +
                 "; ".join(f"{a} {bad:.1f} s vs {good:.1f} s ({ratio:.2f}x)" for a, (bad, good, ratio) in ratios.items()))


def run_threads(quick, names, results, notes):
    print("[bench] threads under a 1-CPU quota", flush=True)
    t = hostile.threads_under_quota()
    if t is None:
        notes.append("- threads under a quota: not measured (no cgroup CPU controller or not root)")
        return
    import os

    results["threads_under_quota_ratio"] = (t["ratio"], "x")
    n = str(os.cpu_count())
    notes.append(f"- one training step (784-400-40 MLP, batch 128, mean over 400 steps, best of 3 runs) under a {t['describe']}: vaelab "
                 f"picks {t['vaelab']['threads']} thread(s), {t['vaelab']['ms']:.2f} ms; fixed 1 thread "
                 f"{t['1']['ms']:.2f} ms; fixed {n} threads {t[n]['ms']:.2f} ms")


def run_gpu(quick, names, results, notes):
    if torch.cuda.is_available():
        gpu = training.gpu_epoch_60k()
        results["gpu_epoch_seconds_60k"] = (gpu["seconds"], "s")
        notes.append(f"- GPU epoch: {gpu['device']}, {gpu['seconds']:.3f} s per 60,000-image epoch")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help=f"comma-separated sections to rerun ({', '.join(SECTIONS)}); "
                        "the other sections keep their last results")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: docs/benchmarks.md (full run) or build/benchmarks-quick.md (--quick)")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.output is None:
        args.output = ROOT / ("build/benchmarks-quick.md" if quick else "docs/benchmarks.md")
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    # Results are kept per section in a JSON file next to the document, so a
    # partial run (--only) replaces its own rows and keeps the others.
    store = args.output.with_suffix(".json")
    saved = json.loads(store.read_text()) if args.only and store.exists() else {}
    names = assignments()
    for section in SECTIONS:
        if section not in chosen:
            continue
        results, notes = {}, []
        globals()[f"run_{section}"](quick, names, results, notes)
        saved[section] = {"results": {k: list(v) for k, v in results.items()}, "notes": notes,
                          "date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions()}

    command = "make bench" + (" QUICK=1" if quick else "")
    dates = sorted({v["date"] for v in saved.values()})
    lines = [f"# Benchmarks ({'quick smoke run' if quick else 'full run'})", "",
             "Generated by `" + command + "` on " + ", ".join(dates) + ".", ""]
    for machine_line in sorted({v["machine"] for v in saved.values()}):
        lines.append(f"- machine: {machine_line}")
    for version_line in sorted({v["versions"] for v in saved.values()}):
        lines.append(f"- libraries: {version_line}")
    lines += ["", "| figure | value | goal | met |", "|---|---|---|---|"]
    every = {}
    for section in SECTIONS:
        every.update({k: tuple(v) for k, v in saved.get(section, {}).get("results", {}).items()})
    for name, (value, unit) in every.items():
        op, goal = GOALS[name]
        met = "" if goal is None else ("yes" if (value >= goal if op == "≥" else value <= goal) else "**no**")
        lines.append(f"| `{name}` | {value:.3g} {unit} | {op} {goal if goal is not None else ''} | {met} |")
    lines += ["", "Details:"]
    for section in SECTIONS:
        if section in saved:
            lines += saved[section]["notes"]
    lines.append("")
    previous = args.output.read_text() if args.output.exists() else ""
    marker = "<!-- analysis -->"
    analysis = previous[previous.index(marker):] if marker in previous else marker + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n" + analysis)
    store.write_text(json.dumps(saved, indent=1) + "\n")
    for name, (value, unit) in every.items():
        print(f"BENCH {name} {value:.4g} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
