"""Key press to new image in the page: the latent explorer of 04_generation in
JupyterLab (started by ``make lab``) and headless Chromium, driven by Playwright.

The time runs from the browser's ``keydown`` event to the ``load`` event of the
explorer's new image, both read from ``performance.now()`` in the page, so it
covers the widget message to the kernel, the decode and PNG encode there, the
message back and the image decode in the browser.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from grader import HIDDEN_REFERENCES
from tests import labdriver


def _summary(samples: list) -> dict:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered), "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "n": len(ordered)}


def key_to_image(presses: int = 30) -> dict | None:
    if labdriver.chromium_path() is None:
        return None
    from playwright.sync_api import sync_playwright

    path = "solutions/04_generation/04_generation.ipynb"
    with tempfile.TemporaryDirectory(prefix="vae-bench-lab-") as tmp, \
            labdriver.Lab(Path(tmp), folders=("solutions",),
                          env={"VAELAB_HIDDEN_REFERENCES": str(HIDDEN_REFERENCES)}) as lab, \
            sync_playwright() as playwright:
        chromium = labdriver.launch_browser(playwright)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            labdriver.open_notebook(page, lab, path)
            run_all = labdriver.run_all(page)
            labdriver.watch_explorer(page, ".vaelab-latent-slider", 0)
            handle = page.locator(".vaelab-latent-slider").first.locator(".noUi-handle")
            # Right then left, so the slider never reaches its end and stops moving.
            slider = [labdriver.press_and_time(page, handle, "ArrowRight" if (i // 10) % 2 == 0 else "ArrowLeft")["ms"]
                      for i in range(presses)]
            labdriver.watch_explorer(page, ".vaelab-class-selector", 0)
            buttons = page.locator(".vaelab-class-selector").first.locator("button")
            classes = [(3 * i + 1) % 10 for i in range(max(presses // 2, 5))]  # never the same class twice in a row
            chosen = [labdriver.press_and_time(page, buttons.nth(c), "Enter")["ms"] for c in classes]
            version = chromium.version
        finally:
            chromium.close()
    lab_version = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "lab", "--version"],
                                 capture_output=True, text=True).stdout.strip() or "unknown"
    return {"slider": _summary(slider), "class": _summary(chosen), "run_all_seconds": run_all,
            "chromium": f"Chromium {version}", "jupyterlab": lab_version}
