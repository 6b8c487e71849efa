"""Notebook figures: wall time and kernel peak RSS of every solution notebook
run top to bottom with default settings, and the latent explorer's update time."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from grader import SOLUTIONS


def _kernel_peak_rss_mb(client) -> float:
    pid = client.km.provisioner.process.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_notebook(path: Path) -> dict:
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        peak = _kernel_peak_rss_mb(client)
    return {"notebook": path.name, "seconds": time.perf_counter() - start, "peak_rss_mb": peak}


def notebooks(names) -> list:
    return [run_notebook(SOLUTIONS / name / f"{name}.ipynb") for name in names]


def slider_update_ms(updates: int) -> dict:
    """Median time for one explorer update (decode + PNG encode) with the course's 784-400-20 model."""
    from grader.notebooks import exec_solution
    from vaelab.widgets import latent_explorer

    ns = exec_solution(SOLUTIONS / "03_vae" / "03_vae.ipynb")
    torch.manual_seed(0)
    model = ns["VAE"](20, 400).eval()
    explorer = latent_explorer(model)
    explorer.update_seconds.clear()
    values = torch.linspace(-2.5, 2.5, updates)
    for i, value in enumerate(values):
        explorer.sliders[i % 8].value = float(value)
    return {"median_ms": 1000 * statistics.median(explorer.update_seconds), "updates": len(explorer.update_seconds)}
