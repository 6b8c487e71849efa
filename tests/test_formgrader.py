"""``make formgrader``: nbgrader's formgrader on a graded folder, used as an instructor would.

The browser test grades one submission with a written proof, starts
``make formgrader`` on the folder and, in headless Chromium, checks that the
formgrader opens inside JupyterLab without the exchange banner, that the
maths is typeset by the locally served MathJax with no request leaving the
machine, and enters a manual score and a comment for Task A. The mark must
then reach the gradebook, ``grades.csv`` (status final, 6 + 2 points), the
LMS export and the student's feedback HTML, and survive ``REGRADE=1``.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import grader
from grader.after import formgrader
from tests import labdriver

PROOF = "proof-elbo-tight"


def test_a_folder_that_was_not_graded_is_refused_with_the_fix(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        result = subprocess.run([sys.executable, "-m", "grader.after.formgrader", "--out", str(folder)],
                                cwd=grader.ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert "make grade SUBMISSIONS=" in result.stderr and str(folder) in result.stderr
    assert not (tmp_path / "exchange").exists()  # nothing written into a folder that was refused


def test_the_exchange_line_is_added_once_and_lies_inside_the_folder(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    for _ in range(2):
        exchange = formgrader.ensure_exchange(tmp_path)
    text = (tmp_path / "nbgrader_config.py").read_text()
    assert text.count(formgrader.EXCHANGE_LINE) == 1 and exchange.is_dir() and exchange.parent == tmp_path
    from traitlets.config import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert loaded.Exchange.root == str(exchange.resolve())


def test_the_formgrader_template_loads_mathjax_from_this_server(tmp_path, monkeypatch):
    """Rendered exactly as the formgrader renders a submission (its exporter
    settings), the page's MathJax comes from the server, not from a CDN."""
    from nbconvert import HTMLExporter
    import nbformat
    from nbgrader.server_extensions.formgrader import handlers

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("$x$")])
    plain = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    resources = {"base_url": "/", "notebook_id": "n", "index": 0, "total": 1}
    before = re.findall(r"<script src=\"([^\"]*(?i:mathjax)[^\"]*)\"", plain.from_notebook_node(nb, resources=resources)[0])
    assert before and all(url.startswith("http") for url in before)  # the default this override exists for

    monkeypatch.setenv("JUPYTER_PATH", str(formgrader.mathjax_templates(tmp_path)))
    local = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    after = re.findall(r"<script src=\"([^\"]*(?i:mathjax)[^\"]*)\"", local.from_notebook_node(nb, resources=resources)[0])
    assert after == ["/" + formgrader.LOCAL_MATHJAX]
    import jupyter_server_mathjax

    shipped = Path(jupyter_server_mathjax.__file__).parent / "static"
    config = formgrader.LOCAL_MATHJAX.split("config=")[1].split(",")
    assert (shipped / "MathJax.js").is_file()
    assert all((shipped / "config" / f"{name}.js").is_file() for name in config)


# --- the browser test ---------------------------------------------------------------

def _graded_folder(tmp_path):
    import nbformat

    from grader.grade.batch import main as grade_main
    from grader.notebooks import make_submission

    from .samples import alternative

    subs, out = tmp_path / "subs", tmp_path / "out"
    path = make_submission("01_elbo", alternative("01_elbo"), subs, "ann")
    nb = nbformat.read(str(path), as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PROOF]
    cell.source = r"The gap is $\mathrm{KL}(q \,\|\, p(z \mid x)) \ge 0$ (Gibbs), with equality iff $q = p(z \mid x)$."
    nbformat.write(nb, str(path))
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo"]) == 0
    return subs, out


def _grades(out):
    with open(out / "grades.csv") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def _manual(out):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        grade = gb.find_grade(PROOF, "01_elbo", "01_elbo", "ann")
        comment = gb.find_comment(PROOF, "01_elbo", "01_elbo", "ann")
        return grade.manual_score, comment.manual_comment


@pytest.mark.browser
@pytest.mark.slow
def test_a_manual_mark_entered_in_the_formgrader_reaches_export_and_feedback(tmp_path):
    if labdriver.chromium_path() is None:
        pytest.skip("no Chromium on this machine: `make browser` installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from grader.grade.batch import main as grade_main

    subs, out = _graded_folder(tmp_path)
    autograded = float(_grades(out)["ann"]["score"])
    assert _grades(out)["ann"]["status"] == f"pending manual grade: {PROOF}"
    comment = "Right idea; say why the KL is zero only when q equals the posterior."

    with labdriver.Formgrader(tmp_path / "server", out) as server, sync_api.sync_playwright() as playwright:
        browser = labdriver.launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            hosts = set()
            page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
            # JupyterLab opens on the formgrader tab (nbgrader's ?formgrader=true route)
            page.goto(f"{server.url}/lab?formgrader=true")
            frame_element = page.wait_for_selector("#formgrader-iframe iframe", timeout=120_000)
            frame = frame_element.content_frame()
            frame.wait_for_selector("text=Manage Assignments", timeout=60_000)
            frame.wait_for_selector("text=01_elbo", timeout=60_000)
            assert frame.query_selector("#warning-exchange") is None, "the exchange banner is shown"

            # Manual Grading > 01_elbo > 01_elbo > ann's submission, as an instructor clicks through
            page.goto(f"{server.url}/formgrader/gradebook/01_elbo/01_elbo")
            page.click("a[href*='/formgrader/submissions/']")
            page.wait_for_selector(f"#{PROOF}", timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('.MathJax').length > 20", timeout=60_000)
            proof_text = page.inner_text("#notebook")
            assert r"\mathrm{KL}" not in proof_text and "$" not in proof_text, "maths left untypeset"

            page.fill(f"#{PROOF}", "2")
            page.press(f"#{PROOF}", "Tab")
            page.fill(f"#{PROOF}-comment", comment)
            page.press(f"#{PROOF}-comment", "Tab")
            deadline = time.monotonic() + 30
            while _manual(out) != (2.0, comment) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _manual(out) == (2.0, comment)
            assert hosts == {f"127.0.0.1:{server.port}"}, f"requests left the machine: {sorted(hosts)}"
        finally:
            browser.close()
    assert server.process.poll() is not None  # the server's process group ended with the context

    # a resumed `make grade` grades nothing again and writes the CSV and feedback with the mark
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo"]) == 0
    row = _grades(out)["ann"]
    assert row["status"] == "final" and float(row["score"]) == pytest.approx(autograded + 2.0)
    feedback = (out / "feedback" / "ann" / "01_elbo" / "01_elbo.html").read_text()
    assert comment in feedback
    # REGRADE=1 grades the unchanged submission again and keeps the formgrader's mark
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo", "--regrade"]) == 0
    assert _manual(out) == (2.0, comment)
    assert float(_grades(out)["ann"]["score"]) == pytest.approx(autograded + 2.0)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,lms_id,name,email\nann,1001,Ann Example,ann@example.org\n")
    from grader.after.export import main as export_main

    assert export_main(["--lms", "canvas", "--roster", str(roster), "--out", str(out)]) == 0
    rows = list(csv.reader(open(out / "grades_canvas_01_elbo.csv")))
    header, ann = rows[0], next(r for r in rows if "1001" in r)
    assert float(ann[header.index(next(h for h in header if "01_elbo" in h))]) == pytest.approx(autograded + 2.0)
