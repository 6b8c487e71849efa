"""Drive the students' JupyterLab in a real browser (Playwright + Debian's Chromium).

Used by ``tests/test_browser.py`` and by the benchmark of slider latency
(``bench/browser.py``). The server is started by ``make lab`` itself, so it is
exactly what a student gets (same command line, same settings overrides),
with only these additions: a free port, no token, no browser window, a
throw-away copy of the notebooks as root folder (JupyterLab autosaves, and the
repository's notebooks must stay without outputs) and empty workspace and user
settings folders, so nothing from an earlier session is restored.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Chromium on a machine with no outside network: no background requests, no
# first-run pages. --no-sandbox only when running as root (Chromium refuses otherwise).
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]

# IPython prints an error as stderr text; these lines mark one in the page.
ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|^\s*[A-Za-z_][\w.]*(Error|Exception|Exit)(:|\s*$)", re.M)


def chromium_path() -> str | None:
    found = os.environ.get("VAELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.access(found, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A JupyterLab server started by a make target (``lab`` or ``formgrader``),
    in its own process group, on a free port, with no token and no browser window."""

    def __init__(self, workdir: Path, target: str, make_vars: dict, env=None, log=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log) if log else self.workdir / f"{target}.log"
        environment = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "NBGRADER_EXECUTION")}
        environment.setdefault("VAELAB_CACHE", str(self.workdir / "cache"))
        environment.update(env or {})
        lab_args = " ".join(["--no-browser", "--IdentityProvider.token=", "--ServerApp.password=",
                             "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                             f"--LabApp.workspaces_dir={self.workdir / 'workspaces'}",
                             f"--LabApp.user_settings_dir={self.workdir / 'user-settings'}"])
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "-s", "-C", str(ROOT), target, f"PORT={self.port}",
             f"LAB_ARGS={lab_args}"] + [f"{k}={v}" for k, v in make_vars.items()],
            stdout=self._log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as reply:
            return json.load(reply)

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Lab(Server):
    """A running ``make lab`` server rooted at a copy of the notebooks (JupyterLab
    autosaves, and the repository's notebooks must stay without outputs)."""

    def __init__(self, workdir: Path, folders=("assignments", "solutions"), env=None, log=None):
        self.root = Path(workdir) / "root"
        for folder in folders:
            shutil.copytree(ROOT / folder, self.root / folder)
        super().__init__(workdir, "lab", {"LAB_ROOT": self.root}, env=env, log=log or Path(workdir) / "jupyterlab.log")


class Formgrader(Server):
    """A running ``make formgrader`` server on a graded course folder."""

    def __init__(self, workdir: Path, out: Path, env=None):
        super().__init__(workdir, "formgrader", {"OUT": out}, env=env)


def launch_browser(playwright):
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("no Chromium found: install Debian's chromium package (make browser) "
                                "or set VAELAB_CHROMIUM")
    args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    return playwright.chromium.launch(executable_path=executable, args=args)


@contextlib.contextmanager
def chromium():
    """Debian's Chromium through Playwright, closed (with Playwright) on every way out."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            yield browser
        finally:
            browser.close()


# The notebook on screen: the visible notebook panel of the main dock area.
PANEL = "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)"


def open_notebook(page, lab: Lab, path: str, timeout: float = 120.0) -> None:
    """Open ``path`` through its URL, in a fresh workspace, and wait for an idle kernel."""
    page.goto(f"{lab.url}/lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/{path}?reset")
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while kernel_status(page) != "idle" and time.monotonic() < deadline:
        accept_dialogs(page)  # the kernel chooser, if it appeared, starts the notebook's own kernel
        time.sleep(0.25)
    wait_kernel_idle(page, max(1.0, deadline - time.monotonic()))


def kernel_status(page) -> str | None:
    return page.evaluate(
        """(panel) => { const e = document.querySelector(panel + ' .jp-Notebook-ExecutionIndicator');
                        return e ? e.dataset.status : null; }""", PANEL)


def prompts(page) -> list:
    return page.eval_on_selector_all(f"{PANEL} .jp-CodeCell .jp-InputPrompt", "es => es.map(e => e.textContent.trim())")


def wait_kernel_idle(page, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while kernel_status(page) != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel not idle after {timeout:.0f} s (status {kernel_status(page)!r})")
        time.sleep(0.25)


def accept_dialogs(page) -> int:
    """Accept any open JupyterLab dialog (the kernel chooser can pop up when a
    notebook opens while the kernel list is still loading): returns how many."""
    accepted = 0
    for _ in range(3):
        dialog = page.query_selector(".jp-Dialog")
        if dialog is None:
            break
        button = dialog.query_selector(".jp-Dialog-button.jp-mod-accept") or dialog.query_selector(".jp-mod-accept")
        if button is None:
            break
        button.click()
        accepted += 1
        time.sleep(0.5)
    return accepted


def _click_run_all(page) -> None:
    accept_dialogs(page)
    page.click("#jp-menu-panel .lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


def run_all(page, timeout: float = 600.0, start_within: float = 20.0, attempts: int = 5) -> float:
    """Run > Run All Cells, as a student would; wait until execution has
    started, nothing is queued or running and the kernel is idle. Until a cell
    has started, any dialog that opens (the kernel chooser can appear when a
    kernel is replaced while the page loads) is accepted at once, and if
    nothing starts within ``start_within`` seconds the menu is used again, up
    to ``attempts`` clicks in all: nothing ran yet, so nothing runs twice.
    Returns the seconds it took."""
    _click_run_all(page)
    start = last_click = time.monotonic()
    started, clicks, settled = False, 1, 0
    while settled < 3:  # idle with nothing pending, three polls in a row
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"Run All still busy after {timeout:.0f} s; kernel {kernel_status(page)!r}, "
                               f"{clicks} click(s) on Run All; prompts {prompts(page)}")
        time.sleep(0.5)
        now = prompts(page)
        started = started or any("*" in p or p.strip("[]: ").isdigit() for p in now)
        if not started:
            accept_dialogs(page)
            if clicks < attempts and time.monotonic() - last_click > start_within:
                _click_run_all(page)
                clicks, last_click = clicks + 1, time.monotonic()
        busy = not started or any("*" in p for p in now) or kernel_status(page) != "idle"
        settled = 0 if busy else settled + 1
    return time.monotonic() - start


def page_outputs(page) -> list:
    """Every output shown in the notebook: (cell index, mime type, text)."""
    return page.evaluate(
        """(panel) => Array.from(document.querySelectorAll(panel + ' .jp-Notebook .jp-Cell')).flatMap((cell, i) =>
               Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o =>
                   [i, o.dataset.mimeType || '', o.textContent]))""", PANEL)


def error_outputs(page) -> list:
    """Outputs that show an error: stderr text carrying a traceback or an
    exception line, and widgets that failed to display."""
    shown = []
    for index, mime, text in page_outputs(page):
        if (mime == "application/vnd.jupyter.stderr" and ERROR_LINE.search(text)) or "Error displaying widget" in text:
            shown.append((index, text.strip()[:400]))
    return shown


def rendered_images(page) -> dict:
    """Scroll every image output into view and count those the browser decoded."""
    images = page.locator(f"{PANEL} .jp-RenderedImage img")
    decoded = 0
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        if image.evaluate("img => img.decode().then(() => img.naturalWidth > 0, () => false)"):
            decoded += 1
    return {"shown": images.count(), "decoded": decoded}


def save(page, lab: Lab, path: str) -> dict:
    """File > Save, then read the saved notebook back through the server."""
    page.click("#jp-menu-panel .lm-MenuBar-itemLabel:text-is('File')")
    page.click(".lm-Menu-itemLabel:text-is('Save Notebook')")
    page.wait_for_function("""() => { const t = document.querySelector('.lm-DockPanel-tabBar .lm-mod-current');
                                    return t && !t.classList.contains('jp-mod-dirty'); }""")
    return lab.api(f"/api/contents/{path}?content=1")["content"]


# -- widget latency -----------------------------------------------------------

_WATCH = """([selector, index]) => {
    // Find the control, then the explorer image that belongs to it.
    const control = document.querySelectorAll(selector)[index];
    if (!control) return 'no element matches ' + selector;
    let box = control;
    while (box && !box.querySelector('img.vaelab-latent-image')) box = box.parentElement;
    if (!box) return 'no explorer image next to ' + selector;
    const img = box.querySelector('img.vaelab-latent-image');
    window.__vaelab = {keys: [], loads: [], img};
    document.addEventListener('keydown', () => window.__vaelab.keys.push(performance.now()), true);
    img.addEventListener('load', () => window.__vaelab.loads.push([performance.now(), img.src]));
    return 'ok';
}"""

_DIGEST = """async () => {
    const img = window.__vaelab.img;
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const hash = await crypto.subtle.digest('SHA-256', bytes);
    return Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def watch_explorer(page, selector: str, index: int = 0) -> None:
    """Start timing key presses and image loads for one explorer."""
    page.locator(selector).nth(index).scroll_into_view_if_needed()
    status = page.evaluate(_WATCH, [selector, index])
    if status != "ok":
        raise AssertionError(status)


def image_digest(page) -> str:
    return page.evaluate(_DIGEST)


def press_and_time(page, focus_locator, key: str, timeout: float = 10.0) -> dict:
    """Focus a control, press ``key`` and wait for the explorer's image to load
    new bytes. Returns the latency (key down -> image loaded) in ms, or raises
    TimeoutError when the image does not change."""
    focus_locator.focus()
    before_digest = image_digest(page)
    loads = page.evaluate("() => window.__vaelab.loads.length")
    page.keyboard.press(key)
    try:
        page.wait_for_function("(n) => window.__vaelab.loads.length > n", arg=loads, timeout=timeout * 1000)
    except Exception as error:  # playwright's TimeoutError
        raise TimeoutError(f"the image did not change within {timeout:.0f} s of pressing {key}") from error
    key_ms = page.evaluate("() => window.__vaelab.keys[window.__vaelab.keys.length - 1]")
    load_ms = page.evaluate("(n) => window.__vaelab.loads[n][0]", loads)
    return {"ms": load_ms - key_ms, "changed": image_digest(page) != before_digest}
