"""The course on a real JupyterHub (issue 34): one hub, one student, the way a course runs it.

- **The hub** (tests/hub/jupyterhub_config.py): JupyterHub with
  configurable-http-proxy from the repository's node_modules, a fixed-password
  DummyAuthenticator, on loopback with free ports and its state in a temporary
  folder. The student's server is started by tests/hub/quota_spawner.py inside
  a per-user cgroup with a 1-CPU quota and a 2 GB memory limit, as The Littlest
  JupyterHub does (quota on the user's parent cgroup, no cgroup namespace).
- **The student edition** (``python -m grader.publish.edition``, i.e. ``make
  student-edition``) is served by ``git daemon`` on loopback; the student logs
  in with Chromium and follows the nbgitpuller link printed in the edition's
  README (with the hub's address filled in): JupyterLab opens on assignment 01,
  Run All reaches the end, and a kernel of that server reports one PyTorch
  thread (vaelab reads the user's cgroup quota).
- **Week 2**: the edition gains 02 (a second commit), the student's edit of a
  TODO cell in 01 is made through the contents API, the link is followed again:
  nbgitpuller merges 02 and keeps the edit.
- **nbgrader's exchange** on the same hub: the instructor releases 01 with the
  course's nbgrader config, the student fetches and submits from a kernel of
  their server (``nbgrader fetch_assignment/submit``), the instructor collects,
  grades the collected folder with ``python -m grader.grade`` (``make grade``)
  and releases the feedback, which the student fetches.

Every process started (git daemon, hub, proxy, the student's server and
kernels) carries a marker in its environment; after the hub is stopped none may
be left running, and none of the test's cgroups may remain.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import grader
from tests import cpu_quota, labdriver
from tests.hub import harness

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = grader.ROOT / "build" / "browser-artifacts" / "hub"
REPORT = grader.ROOT / "build" / "hub-report.json"
REPO = "vae-course-student"
FIRST = "assignments/01_elbo/01_elbo.ipynb"
# nbgrader's student id is the Unix user the server runs as: jupyter-student on TLJH, the hub's name on
# Zero to JupyterHub (user jovyan); here every server runs as the hub's own user, root.
STUDENT_ID = "root"
SECOND = "assignments/02_reparameterization/02_reparameterization.ipynb"

if labdriver.chromium_path() is None:
    pytest.skip("no Chromium on this machine: `make browser` installs Debian's chromium (or set VAELAB_CHROMIUM)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("jupyterhub", reason="jupyterhub is not installed (requirements-dev.txt)")
pytest.importorskip("nbgitpuller", reason="nbgitpuller is not installed (requirements-dev.txt)")
if os.geteuid() != 0:
    pytest.skip("the hub test puts the student's server in a CPU-quota cgroup: needs root", allow_module_level=True)
if not cpu_quota.available():
    pytest.skip("no usable cgroup CPU controller on this machine", allow_module_level=True)
if not harness.memory_cgroup_available():
    pytest.skip("no cgroup v1 memory controller for the student's memory limit", allow_module_level=True)
if shutil.which("git") is None:
    pytest.skip("git is not installed", allow_module_level=True)
if harness.proxy_command() is None:
    pytest.skip("configurable-http-proxy is not installed: run `npm ci` at the repository root "
                "(package.json; needs Node.js >= 20)", allow_module_level=True)


def _edition(dest: Path, upto: str, repo_url: str) -> str:
    """``make student-edition DEST=dest UPTO=upto REPO_URL=repo_url`` (the same module, without
    make's venv check, which would reinstall the requirements when their files are newer)."""
    done = subprocess.run([sys.executable, "-m", "grader.publish.edition", str(dest), "--upto", upto, "--repo-url", repo_url],
                          cwd=grader.ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _readme_link(dest: Path, hub_url: str) -> str:
    """The nbgitpuller link as the edition's README gives it, with the hub's address filled in."""
    text = (dest / "README.md").read_text()
    links = re.findall(r"`(https://YOUR-JUPYTERHUB/hub/user-redirect/git-pull\?[^`]+)`", text)
    assert len(links) == 1, f"expected one nbgitpuller link in the edition README, found {links}"
    return links[0].replace("https://YOUR-JUPYTERHUB", hub_url)


def answer_kl_gaussian_1d(notebook: dict) -> None:
    """The student's (right) answer to the first TODO cell of 01, in place."""
    cell = next(c for c in notebook["cells"]
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "kl_gaussian_1d")
    assert "raise NotImplementedError()" in cell["source"]
    cell["source"] = cell["source"].replace(
        "    # YOUR CODE HERE\n    raise NotImplementedError()",
        "    # my answer (student)\n"
        "    mu_q, sigma_q, mu_p, sigma_p = map(sp.sympify, (mu_q, sigma_q, mu_p, sigma_p))\n"
        "    return sp.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - sp.Rational(1, 2)")


class Course:
    """Everything the tests share: the edition, its git server, the hub, a browser page."""

    def __init__(self, workdir: Path, stack: contextlib.ExitStack):
        self.workdir = workdir
        self.marker = uuid.uuid4().hex
        self.password = uuid.uuid4().hex[:12]
        env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "NBGRADER_EXECUTION", "VAELAB_CACHE")}
        env["VAE_HUB_TEST"] = self.marker
        env["VAE_HUB_EXCHANGE"] = str(workdir / "exchange")
        self.env = env
        self.exchange = workdir / "exchange"
        self.exchange.mkdir(mode=0o777)
        self.exchange.chmod(0o777)  # nbgrader wants a world-writable exchange, as /srv/nbgrader/exchange is
        self.home = workdir / "hub" / "home" / "student"
        self.left, self.groups_left, self.ps = [], [], ""
        stack.callback(self._sweep)  # runs once the hub and the git daemon are stopped

        served = workdir / "served"
        served.mkdir()
        self.edition = served / REPO
        git_port = labdriver.free_port()
        self.repo_url = f"git://127.0.0.1:{git_port}/{REPO}"
        t0 = time.monotonic()
        _edition(self.edition, "01_elbo", self.repo_url)
        self.timings = {"edition_01_s": round(time.monotonic() - t0, 1)}

        self.git = harness.GitServer(served, git_port, env, workdir / "git-daemon.log")
        stack.callback(self.git.close)
        self.git.wait_ready(REPO)

        ports = {"hub": labdriver.free_port(), "hub_api": labdriver.free_port(), "proxy_api": labdriver.free_port()}
        assert len(set(ports.values())) == 3
        t0 = time.monotonic()
        self.hub = harness.Hub(workdir / "hub", ports, self.password, env, workdir / "jupyterhub.log")
        stack.callback(self.hub.close)
        self.hub.wait_ready()
        self.timings["hub_start_s"] = round(time.monotonic() - t0, 1)
        self.server_url = f"{self.hub.url}/user/student"
        self.link = _readme_link(self.edition, self.hub.url)

    def _sweep(self) -> None:
        """What of the test is still running, and which of its cgroups remain; then end and remove them,
        so that a failed check leaves nothing behind either."""
        self.left = harness.leftovers(self.marker)
        ledger = self.workdir / "hub" / "cgroups.txt"
        self.groups_left = [g for g in (ledger.read_text().split() if ledger.exists() else []) if Path(g).exists()]
        self.ps = subprocess.run(["ps", "-eo", "pid,pgid,user,args"], capture_output=True, text=True).stdout
        for pid, _ in self.left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        if hasattr(self, "hub"):
            self.hub.remove_cgroups()

    # -- the student's server, through the hub, with the test's service token --
    def server_api(self, method: str, path: str, body=None):
        return self.hub.api(method, f"/user/student{path}", body)

    def kernel_for(self, notebook: str, timeout: float = 60.0) -> harness.Kernel:
        # JupyterLab 4 names the session after the notebook; its path is the folder and a session id
        folder, name = f"{REPO}/{notebook}".rsplit("/", 1)
        deadline = time.monotonic() + timeout
        while True:
            sessions = self.server_api("GET", "/api/sessions")
            ids = [s["kernel"]["id"] for s in sessions if s["type"] == "notebook" and s["kernel"]
                   and (s["path"] == f"{folder}/{name}" or (s["name"] == name and s["path"].startswith(folder + "/")))]
            if ids or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(ids) == 1, f"expected one kernel session for {notebook}: {sessions}"
        return harness.Kernel(self.server_url, ids[0], self.hub.token)

    def new_kernel(self) -> harness.Kernel:
        kernel = self.server_api("POST", "/api/kernels", {"name": "python3"})
        return harness.Kernel(self.server_url, kernel["id"], self.hub.token)


@pytest.fixture(scope="module")
def course():
    workdir = Path(tempfile.mkdtemp(prefix="vae-hub-test-"))  # removed at the end
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        course = Course(workdir, stack)  # on an error the stack still stops what was started
        try:
            yield course
        finally:
            REPORT.parent.mkdir(parents=True, exist_ok=True)
            REPORT.write_text(json.dumps(course.timings, indent=2))
    # the stack stopped the hub (the student's server, kernels and the proxy with it) and the git daemon,
    # then swept: nothing of the test may have been left running, and no cgroup of it may remain
    assert not course.left, f"processes of the hub test still running after it stopped: {course.left}\n{course.ps}"
    assert not course.groups_left, f"cgroups of the hub test left behind: {course.groups_left}"


@pytest.fixture(scope="module")
def browser():
    with labdriver.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(browser, course):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console = []
    page.on("console", lambda message: page.console.append(f"[{message.type}] {message.text}"))
    yield page
    context.close()


@pytest.fixture
def artifacts(page, course, request):
    yield
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        folder = ARTIFACTS / request.node.name
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
        (folder / "console.log").write_text("\n".join(page.console))
        (folder / "jupyterhub.log").write_text(course.hub.log_tail(600))


def _open_link(page, course, notebook: str, timeout: float = 240.0) -> None:
    """Follow the nbgitpuller link: the hub starts the server if needed, nbgitpuller pulls,
    JupyterLab opens on the notebook; wait for an idle kernel."""
    page.goto(course.link)
    page.wait_for_url(re.compile(r"/user/student/lab/"), timeout=timeout * 1000)
    page.wait_for_selector(f"{labdriver.PANEL} .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while labdriver.kernel_status(page) != "idle" and time.monotonic() < deadline:
        labdriver.accept_dialogs(page)
        time.sleep(0.25)
    labdriver.wait_kernel_idle(page, max(1.0, deadline - time.monotonic()))
    # the notebook on screen is the clone's (JupyterLab may rewrite the address bar to the folder later)
    tab, wait_until = "", time.monotonic() + 30
    while f"Path: {REPO}/{notebook}" not in tab and time.monotonic() < wait_until:  # the tab's title comes a moment later
        tab = page.get_attribute(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", "title") or ""
        time.sleep(0.25)
    assert f"Path: {REPO}/{notebook}" in tab, (tab, page.url)


def test_student_logs_in_and_the_link_opens_assignment_01_under_a_1_cpu_quota(course, page, artifacts):
    page.goto(f"{course.hub.url}/hub/login")
    page.fill("input[name=username]", "student")
    page.fill("input[name=password]", course.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(r"/(hub/spawn-pending|hub/home|user)/"), timeout=60_000)

    t0 = time.monotonic()
    _open_link(page, course, FIRST)
    course.timings["first_link_s"] = round(time.monotonic() - t0, 1)
    clone = course.home / REPO
    assert (clone / FIRST).is_file() and not (clone / SECOND).exists()
    title = page.inner_text(f"{labdriver.PANEL} .jp-Notebook .jp-MarkdownOutput h1 >> nth=0", timeout=30_000)
    assert "The evidence lower bound" in title

    # The notebook's own kernel, started in the student's server: one PyTorch thread for a 1-CPU quota
    # on a machine that shows more cores, and the quota sits on the parent of the kernel's own cgroup.
    probe = course.kernel_for(FIRST).run(
        "import os, torch, vaelab\n"
        "from vaelab.runtime import cgroup_cpu_limit\n"
        "cpu = [l.split(':', 2)[2] for l in open('/proc/self/cgroup').read().splitlines() if l.split(':')[1] == 'cpu'][0]\n"
        "mem = [l.split(':', 2)[2] for l in open('/proc/self/cgroup').read().splitlines() if l.split(':')[1] == 'memory'][0]\n"
        "limit_bytes = open('/sys/fs/cgroup/memory' + mem + '/memory.limit_in_bytes').read().strip()\n"
        "print(torch.get_num_threads(), cgroup_cpu_limit(), os.cpu_count(), cpu, limit_bytes)")
    assert probe["status"] == "ok", probe
    threads, limit, cores, cgroup, memory = probe["stdout"].split()
    assert int(memory) == 2 * 1024**3, f"memory limit {memory} bytes, not 2G"
    assert (int(threads), float(limit)) == (1, 1.0), probe
    assert re.fullmatch(r"/vaelab-quota-\w+/user-server", cgroup), cgroup
    assert int(cores) >= 1
    # the leftover check at the end can see the test's processes (the marker reaches the kernels)
    running = " ".join(command for _, command in harness.marked(course.marker))
    for name in ("jupyterhub ", "configurable-http-proxy", "jupyterhub-singleuser", "ipykernel_launcher", "git daemon"):
        assert name in running, f"{name!r} not among the marked processes: {running}"

    # Run All, as a student would on first arrival: it reaches the end without an error
    # (the TODO cells print notes instead of failing).
    course.timings["run_all_01_s"] = round(labdriver.run_all(page, timeout=600), 1)
    assert labdriver.error_outputs(page) == []
    prompts = labdriver.prompts(page)
    assert prompts and all(p.strip("[]: ").isdigit() for p in prompts), prompts


def test_week_two_merges_without_touching_the_students_work(course, page, artifacts):
    clone = course.home / REPO
    assert (clone / FIRST).is_file(), "the first visit did not clone the edition"
    page.goto("about:blank")  # the student closes the tab; the edit below is theirs
    out = _edition(course.edition, "02_reparameterization", course.repo_url)
    assert "02_reparameterization" in out

    # The student's answer to the first TODO cell, saved through the server's contents API.
    path = f"/api/contents/{REPO}/{FIRST}"
    model = course.server_api("GET", path + "?content=1")
    notebook = model["content"]
    answer_kl_gaussian_1d(notebook)
    course.server_api("PUT", path, {"type": "notebook", "format": "json", "content": notebook})
    edited = (clone / FIRST).read_text()
    assert "my answer (student)" in edited

    t0 = time.monotonic()
    _open_link(page, course, FIRST)
    course.timings["second_link_s"] = round(time.monotonic() - t0, 1)
    assert (clone / SECOND).is_file(), "nbgitpuller did not bring in week 2"
    after = json.loads((clone / FIRST).read_text())
    assert after == json.loads(edited), "nbgitpuller changed the student's notebook"
    assert "02_reparameterization" in (clone / "README.md").read_text()
    upstream = subprocess.run(["git", "-C", str(course.edition), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    merged = subprocess.run(["git", "-C", str(clone), "merge-base", "--is-ancestor", upstream, "HEAD"])
    assert merged.returncode == 0, "the student's clone does not contain the week-2 commit"
    page.goto("about:blank")


def _student(course, kernel: harness.Kernel, *args: str) -> str:
    """``nbgrader ARGS`` run by the student, from a kernel of their server (its environment, cgroup and home)."""
    done = kernel.run(
        "import json, os, subprocess\n"
        f"r = subprocess.run(['nbgrader', *{list(args)!r}], cwd=os.path.expanduser('~'), capture_output=True, text=True)\n"
        "print(json.dumps([r.returncode, r.stdout + r.stderr]))", timeout=180)
    assert done["status"] == "ok", done
    code, output = json.loads(done["stdout"].strip().splitlines()[-1])
    assert code == 0, f"student: nbgrader {' '.join(args)} failed:\n{output}"
    return output


def _instructor(course, folder: Path, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([str(harness.VENV_BIN / "nbgrader"), *args], cwd=folder, env=course.env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"instructor: nbgrader {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_nbgrader_exchange_release_fetch_submit_collect_grade_feedback(course, artifacts):
    # The instructor's course folder: the course's nbgrader config, its released notebooks, the hub's exchange.
    instructor = course.workdir / "instructor"
    shutil.copytree(grader.ROOT / "assignments" / "01_elbo", instructor / "assignments" / "01_elbo")
    (instructor / "nbgrader_config.py").write_text(
        f"c = get_config()\n"
        f"load_subconfig({str(grader.ROOT / 'grader' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(instructor)!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(instructor / 'gradebook.db')!r}\n"
        f"c.Exchange.root = {str(course.exchange)!r}\n")
    _instructor(course, instructor, "release_assignment", "01_elbo")
    assert (course.exchange / "vae-course" / "outbound" / "01_elbo" / "01_elbo.ipynb").is_file()

    t0 = time.monotonic()
    kernel = course.new_kernel()
    assert "01_elbo" in _student(course, kernel, "list")
    _student(course, kernel, "fetch_assignment", "01_elbo")
    fetched = "/api/contents/01_elbo/01_elbo.ipynb"
    notebook = course.server_api("GET", fetched + "?content=1")["content"]
    answer_kl_gaussian_1d(notebook)
    course.server_api("PUT", fetched, {"type": "notebook", "format": "json", "content": notebook})
    _student(course, kernel, "submit", "01_elbo")

    _instructor(course, instructor, "collect", "01_elbo")
    submitted = instructor / "submitted"
    assert (submitted / STUDENT_ID / "01_elbo" / "01_elbo.ipynb").is_file(), list(submitted.rglob("*"))

    # make grade SUBMISSIONS=<collected submitted folder> ASSIGNMENT=01_elbo OUT=...
    out = course.workdir / "grading"
    course.timings["student_fetch_submit_s"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    graded = subprocess.run([sys.executable, "-m", "grader.grade", str(submitted), "--assignment", "01_elbo",
                             "--out", str(out)], cwd=grader.ROOT, env=course.env, capture_output=True, text=True,
                            timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    grades = (out / "grades.csv").read_text()
    assert STUDENT_ID in grades, grades
    html = sorted((out / "feedback" / STUDENT_ID / "01_elbo").glob("*.html"))
    assert html, f"no feedback HTML under {out / 'feedback'}"

    # nbgrader release_feedback reads feedback/<student>/<assignment>/ of the instructor's course folder: the
    # HTML beside the submission's timestamp and secret, which `make grade` keeps there as nbgrader's own
    # generate_feedback does; the student's fetch_feedback finds the page by that secret.
    written = out / "feedback" / STUDENT_ID / "01_elbo"
    for part in ("timestamp.txt", "submission_secret.txt"):
        assert (written / part).read_bytes() == (submitted / STUDENT_ID / "01_elbo" / part).read_bytes(), part
    shutil.copytree(written, instructor / "feedback" / STUDENT_ID / "01_elbo")
    _instructor(course, instructor, "release_feedback", "01_elbo")

    _student(course, kernel, "fetch_feedback", "01_elbo")
    got = list((course.home / "01_elbo" / "feedback").rglob("01_elbo.html"))
    assert len(got) == 1, f"feedback fetched by the student: {list((course.home / '01_elbo').rglob('*'))}"
    assert got[0].read_bytes() == html[0].read_bytes()
    course.timings["grade_and_feedback_s"] = round(time.monotonic() - t0, 1)
