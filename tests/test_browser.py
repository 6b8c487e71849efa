"""The course in real JupyterLab, in a real browser (``make test-browser``).

Every released assignment and every solution notebook is opened through its
URL in headless Chromium and run with Run > Run All Cells; no cell may show
an error. Solutions must also show their figures, and no self-check may fail on
them. Under ``make test`` (CI) the slow cells use their short configuration,
since the Binder replica runs every solution in full; ``make test-full`` runs
this suite in full as well. On 04_generation the latent
sliders and the CVAE class selector are moved with the keyboard and the
explorer's image must change; the key-press-to-new-image latency goes to
build/browser-report.json (``make bench`` measures it for the benchmark
document). On failure, a screenshot and the browser console log are saved
under build/browser-artifacts/<test>/.
"""
from __future__ import annotations

import json
import os
import statistics

import pytest

import grader
from tests import labdriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = grader.ROOT / "build" / "browser-artifacts"
REPORT = grader.ROOT / "build" / "browser-report.json"
NOTEBOOKS = [(kind, name) for name in grader.assignments() for kind in ("assignments", "solutions")]

if labdriver.chromium_path() is None:
    pytest.skip("no Chromium on this machine: `make test-browser` installs Debian's chromium "
                "(or set VAELAB_CHROMIUM)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lab")
    # Solutions run their hidden-test cells too, so they need the hidden references.
    env = {"VAELAB_HIDDEN_REFERENCES": str(grader.HIDDEN_REFERENCES)}
    if not os.environ.get("VAELAB_TEST_FULL"):
        # CI: the slow cells take their short (autograde) configuration here. The Binder replica of `make test`
        # runs every solution in its full configuration, with the same "no error, no failed self-check" rule;
        # `make test-full` runs this suite in the full configuration too.
        env["NBGRADER_EXECUTION"] = "autograde"
    with labdriver.Lab(workdir, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with labdriver.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def report():
    results = {}
    yield results
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2))


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = []
    page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    yield page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        folder = ARTIFACTS / request.node.name.replace("/", "-").replace("[", "-").strip("]")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
        except Exception as error:  # a crashed page still gets its console log saved
            console.append(f"[screenshot failed] {error}")
        (folder / "console.log").write_text("\n".join(console))
        (folder / "jupyterlab.log").write_text(lab.log_tail(400))
    context.close()


def test_student_settings_switch_off_news_and_update_checks(lab):
    """The overrides installed by `make lab` (and Binder's postBuild) are in force."""
    schema = lab.api("/lab/api/settings/@jupyterlab/apputils-extension:notification")["schema"]["properties"]
    assert schema["fetchNews"]["default"] == "false"
    assert schema["checkForUpdates"]["default"] is False


def saved_errors(notebook: dict) -> list:
    return [(i, o.get("ename"), o.get("evalue", "")[:200]) for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" for o in cell.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("kind,name", NOTEBOOKS, ids=[f"{k}/{n}" for k, n in NOTEBOOKS])
def test_run_all_in_jupyterlab(kind, name, lab, page, report):
    path = f"{kind}/{name}/{name}.ipynb"
    labdriver.open_notebook(page, lab, path)
    seconds = labdriver.run_all(page, timeout=600)
    shown = labdriver.error_outputs(page)
    assert shown == [], f"error outputs in the page: {shown}"
    prompts = labdriver.prompts(page)
    assert prompts and all(p.strip("[]: ").isdigit() for p in prompts), f"cells left unexecuted: {prompts}"
    saved = labdriver.save(page, lab, path)
    assert saved_errors(saved) == []
    # Figures: PNG outputs with nothing richer beside them (a sympy result carries
    # a PNG too, but JupyterLab shows its LaTeX).
    pngs = sum(set(o.get("data", {})) == {"text/plain", "image/png"} for c in saved["cells"]
               if c["cell_type"] == "code" for o in c.get("outputs", []))
    images = labdriver.rendered_images(page)
    if kind == "solutions":
        text = "\n".join("".join(o.get("text", "")) for c in saved["cells"] if c["cell_type"] == "code"
                         for o in c.get("outputs", []))
        assert "✗" not in text, "a self-check fails on the reference solution"
        assert pngs > 0, "the solution draws no figures"
        assert images["decoded"] >= pngs, f"{pngs} figures in the notebook, {images} in the page"
    report.setdefault("run_all_seconds", {})[path] = round(seconds, 1)


def _latencies(page, control, key, presses):
    timings = [labdriver.press_and_time(page, control(i), key) for i in range(presses)]
    unchanged = [i for i, t in enumerate(timings) if not t["changed"]]
    assert not unchanged, f"presses {unchanged} reloaded the image with identical pixels"
    return [t["ms"] for t in timings]


def test_latent_sliders_and_class_selector_respond_to_the_keyboard(lab, page, report):
    path = "solutions/04_generation/04_generation.ipynb"
    labdriver.open_notebook(page, lab, path)
    labdriver.run_all(page, timeout=600)

    # The VAE explorer: the first latent slider, moved with the arrow key.
    slider = ".vaelab-latent-slider"
    assert page.locator(slider).count() > 0, "no latent slider in the page"
    labdriver.watch_explorer(page, slider, 0)
    handle = page.locator(slider).first.locator(".noUi-handle")
    readout = page.locator(slider).first.locator(".widget-readout")
    start_value = readout.inner_text()
    slider_ms = _latencies(page, lambda i: handle, "ArrowRight", presses=8)
    assert readout.inner_text() != start_value, "the slider's readout did not move"

    # The CVAE explorer: choose classes with the keyboard (focus a class button, press Enter).
    selector = ".vaelab-class-selector"
    assert page.locator(selector).count() == 1, "no CVAE class selector in the page"
    labdriver.watch_explorer(page, selector, 0)
    buttons = page.locator(selector).first.locator("button")
    classes = [1, 7, 3, 8, 0]
    class_ms = _latencies(page, lambda i: buttons.nth(classes[i]), "Enter", presses=len(classes))
    chosen = buttons.nth(classes[-1])
    assert "mod-active" in (chosen.get_attribute("class") or ""), "the pressed class button is not selected"

    report["slider_key_to_image_ms"] = {"median": statistics.median(slider_ms), "max": max(slider_ms),
                                        "samples": [round(x, 1) for x in slider_ms]}
    report["class_key_to_image_ms"] = {"median": statistics.median(class_ms), "max": max(class_ms),
                                       "samples": [round(x, 1) for x in class_ms]}
