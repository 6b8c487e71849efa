"""Student HTML cannot run script in the feedback HTML or the formgrader (grader/sanitize.py).

Every payload a red team ran tries to leave three traces when it runs: it
pushes its name onto ``top.__pwned``, loads an image from a local HTTP server
this module starts (and stops), and, inside the formgrader, writes
``pwned-<name>.txt`` into the course folder through the Jupyter server's
``/api/contents``. The payloads: ``<script>``, ``<img src=x onerror=...>``
and a ``javascript:`` link in the written proof; ``display(HTML(...))`` with
a script and an onerror handler; an ``<iframe srcdoc>`` holding a script; an
SVG with onload and a script; a JavaScript output; a markdown output with an
onerror handler.

- Without tests: the pure functions (honest notebooks untouched byte for
  byte, idempotence, markdown and LaTeX kept, PNG and table outputs kept, the
  policy taken from the template alone, links never followed).
- In headless Chromium (marked browser/slow; skipped without Chromium), the
  feedback page rendered exactly as ``generate_feedback`` renders it, with
  each layer alone and all together: without any layer the payloads run (so
  the test can fail), with any one of them none does, while the PNG figure
  decodes and MathJax typesets the maths under the Content-Security-Policy
  (MathJax's CDN is answered from the copy jupyter-server-mathjax ships).
- End to end: a submission carrying the payloads is graded by ``make grade``'s
  code (nbgrader executes the ``display(...)`` cell), its feedback is
  regenerated and hardened and stays inert; ``make formgrader`` on the folder
  sanitizes the unsanitized copy it finds, and a raw copy written after the
  server started is still inert in the submission view (the render-time pass),
  while the same payload put into that page directly does write its file.
"""
from __future__ import annotations

import base64
import copy
import http.server
import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

import grader
from grader import sanitize
from tests import labdriver

PROOF = "proof-elbo-tight"
MATHS = r"The gap is $\mathrm{KL}(q \,\|\, p(z \mid x)) \ge 0$, so **equality** holds iff $q = p(z \mid x)$."
LINK_TEXT = "see my derivation"
# the payload link, clicked as a curious instructor would
CLICK_LINK = "(text) => document.querySelectorAll('a').forEach(a => { if (a.textContent.trim() === text) a.click(); })"
# payloads that run in a page nbconvert renders without any of the layers
LIVE = {"md_script", "md_onerror", "md_link", "html_script", "html_onerror", "iframe", "md_output"}


# ------------------------------------------------------------------ payloads

def js(name: str, port: int) -> str:
    """The payload body: marker, beacon and, where served by Jupyter, a file (no double quote, no `</`)."""
    return ("(top.__pwned=top.__pwned||[]).push('%(n)s');"
            "new Image().src='http://127.0.0.1:%(p)d/%(n)s';"
            "fetch('/api/contents/pwned-%(n)s.txt',{method:'PUT',headers:{'Content-Type':'application/json',"
            "'X-XSRFToken':(document.cookie.match(/_xsrf=([^;]*)/)||['',''])[1]},"
            "body:JSON.stringify({type:'file',format:'text',content:'%(n)s'})}).catch(function(e){});"
            % {"n": name, "p": port})


def proof_payload(port: int) -> str:
    return (f"{MATHS}\n\n<script>{js('md_script', port)}</script>\n\n"
            f"Here is a figure: <img src=x onerror=\"{js('md_onerror', port)}\">\n\n"
            f"[{LINK_TEXT}](javascript:(top.__pwned=top.__pwned||[]).push('md_link'))\n\nMaths again: $x^2$.")


def output_payloads(port: int) -> dict:
    return {
        "html": (f"<b>a table</b><script>{js('html_script', port)}</script>"
                 f"<img src=x onerror=\"{js('html_onerror', port)}\">"),
        "iframe": f"<iframe srcdoc=\"<script>{js('iframe', port)}</script>\"></iframe>",
        "svg": (f"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10' onload=\"{js('svg_onload', port)}\">"
                f"<script>{js('svg_script', port)}</script></svg>"),
        "js": js("js_output", port),
        "markdown": f"*output* <img src=x onerror=\"{js('md_output', port)}\">",
    }


def payload_code(port: int) -> str:
    """A cell a student adds: nbgrader executes it and stores the outputs."""
    p = output_payloads(port)
    return ("import base64\nfrom IPython.display import HTML, SVG, Image, Javascript, Markdown, display\n"
            f"display(HTML({p['html']!r}))\ndisplay(HTML({p['iframe']!r}))\ndisplay(SVG({p['svg']!r}))\n"
            f"display(Javascript({p['js']!r}))\ndisplay(Markdown({p['markdown']!r}))\n"
            f"display(Image(data=base64.b64decode({png_base64()!r})))  # an honest figure\n")


def png_base64() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 12), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def with_payloads(nb, port: int):
    """``nb`` with the proof replaced by the payload proof and a code cell
    holding every payload output (as executing ``payload_code`` stores them)
    and a PNG figure."""
    nb = copy.deepcopy(nb)
    (proof,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PROOF]
    proof.source = proof_payload(port)
    p = output_payloads(port)
    display = lambda data: nbformat.v4.new_output("display_data", data=data)  # noqa: E731
    nb.cells.append(nbformat.v4.new_code_cell(payload_code(port), outputs=[
        display({"text/html": p["html"], "text/plain": "<IPython.core.display.HTML object>"}),
        display({"text/html": p["iframe"], "text/plain": "<IPython.core.display.HTML object>"}),
        display({"image/svg+xml": p["svg"], "text/plain": "<IPython.core.display.SVG object>"}),
        display({"application/javascript": p["js"], "text/plain": "<IPython.core.display.Javascript object>"}),
        display({"text/markdown": p["markdown"], "text/plain": "<IPython.core.display.Markdown object>"}),
        display({"image/png": png_base64(), "text/plain": "<Figure size 240x120 with 1 Axes>"}),
    ]))
    return nb


def released():
    return nbformat.read(str(grader.RELEASE / "01_elbo" / "01_elbo.ipynb"), as_version=4)


# ------------------------------------------------------------------ without a browser

@pytest.mark.parametrize("folder", ["solutions", "assignments"])
def test_an_honest_notebook_is_left_byte_for_byte(tmp_path, folder):
    for name in grader.assignments():
        original = grader.ROOT / folder / name / f"{name}.ipynb"
        copy_ = tmp_path / f"{name}.ipynb"
        copy_.write_bytes(original.read_bytes())
        before = os.stat(copy_).st_mtime_ns
        assert sanitize.sanitize_notebook(copy_) == [], name
        assert copy_.read_bytes() == original.read_bytes() and os.stat(copy_).st_mtime_ns == before


def test_payloads_are_removed_once_keeping_the_markdown_and_the_maths(tmp_path):
    path = tmp_path / "01_elbo.ipynb"
    nbformat.write(with_payloads(released(), 9), str(path))
    notes = sanitize.sanitize_notebook(path)
    text = "\n".join(notes)
    assert f"cell {PROOF} (markdown): removed <script>" in text and "onerror=" in text and "javascript:" in text
    for expected in ("text/html output: removed <script>, onerror=", "<iframe>", "dropped an SVG output",
                     "dropped the application/javascript output", "text/markdown output: removed onerror="):
        assert expected in text, (expected, notes)
    nb = nbformat.read(str(path), as_version=4)
    (proof,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PROOF]
    assert MATHS in proof.source and "Maths again: $x^2$." in proof.source and f"[{LINK_TEXT}](#)" in proof.source
    assert "<img src=\"x\">" in proof.source and "<script" not in proof.source and "onerror" not in proof.source
    outputs = nb.cells[-1].outputs
    assert [sorted(o.data) for o in outputs] == [["text/html", "text/plain"], ["text/html", "text/plain"],
                                                  ["text/plain"], ["text/plain"], ["text/markdown", "text/plain"],
                                                  ["image/png", "text/plain"]]
    assert outputs[0].data["text/html"].startswith("<b>a table</b>") and outputs[-1].data["image/png"] == png_base64()
    # idempotent: a second pass finds nothing and leaves the file as it is
    first = path.read_bytes()
    assert sanitize.sanitize_notebook(path) == [] and path.read_bytes() == first
    # every other cell, locked or not, is the released one
    original = released()
    assert [c.source for c in nb.cells[:-1] if c.get("id") != PROOF] == \
        [c.source for c in original.cells if c.get("id") != PROOF]


@pytest.mark.parametrize("source", [
    "<a href=\"&#106;avascript:alert(1)\">x</a>", "[x](&#106;avascript:alert(1)) $y<z$",
    "<a href=\"java&#x09;script:alert(1)\">t</a>", "```mermaid\n<img src=x onerror=alert(1)>\n```",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "<form action=\"javascript:alert(1)\"><button>go</button></form>",
    "<span style=\"background:url(http://127.0.0.1/x)\">s</span>",
    "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
    "<img src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">", "<base href=\"javascript:alert(1)//\">",
])
def test_tricky_markdown_renders_clean(source):
    cleaned = sanitize.clean_markdown(source)
    assert sanitize.markdown_problems(source) and not sanitize.markdown_problems(cleaned)
    assert active(sanitize.render_markdown(source)) or "url(" in source  # as written, it is live
    assert active(sanitize.render_markdown(cleaned)) == []
    assert sanitize.clean_markdown(cleaned) == cleaned


def active(fragment: str) -> list:
    """Script-capable things a browser would build from ``fragment`` (checked
    here independently of the module's allow-list)."""
    from bleach import html5lib_shim

    found = []
    parser = html5lib_shim.BleachHTMLParser(tags=None, strip=False, consume_entities=True, namespaceHTMLElements=False)
    for token in html5lib_shim.getTreeWalker("etree")(parser.parseFragment(fragment)):
        if token["type"] not in ("StartTag", "EmptyTag"):
            continue
        if token["name"] in ("script", "iframe", "object", "embed", "svg", "math", "style", "base", "form", "meta"):
            found.append(token["name"])
        for (_, name), value in token["data"].items():
            scheme = re.sub(r"[\x00-\x20]", "", value).lower().split(":", 1)[0]
            if name.startswith("on") or (name in ("href", "src", "action", "formaction", "srcdoc", "data")
                                         and scheme in ("javascript", "vbscript", "data") and
                                         not value.startswith("data:image/png")):
                found.append(f"{token['name']} {name}={value[:30]}")
    return found


def test_honest_html_stays_and_pandas_tables_keep_their_table():
    pandas = pytest.importorskip("pandas")
    table = pandas.DataFrame({"kl": [0.1, 0.2], "elbo": [-3.0, -2.5]})._repr_html_()
    cleaned = sanitize.clean_html(table)
    assert "<style" not in cleaned and "<table" in cleaned and "<th>kl</th>" in cleaned and "-2.5" in cleaned
    for honest in ("<b>bold</b> and <i>it</i><br>", "<table border=\"1\"><thead><tr><th>a</th></tr></thead></table>",
                   "<!-- instructor -->", "<span style=\"color: red;\">warm</span>",
                   "<img src=\"data:image/png;base64,iVBORw0KGgo=\" width=\"10\">",
                   "<a href=\"https://example.org/#x\">l</a>"):
        assert sanitize.html_problems(honest) == [], honest
    for honest in ("# Title $x^2$\n\n| a | b |\n|:--|--:|\n| 1 | 2 |", "- [ ] to do\n- [x] done", "$a<b$ and `<b>`",
                   "<!-- instructor -->\ntext\n<!-- /instructor -->", "$$\\int_0^1 x<2\\,dx$$"):
        assert sanitize.clean_markdown(honest) == honest, honest


def test_figures_widgets_and_svg_keep_their_honest_form():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0], "o-")
    ax.imshow(np.eye(3), extent=(0, 1, 0, 1))
    ax.set_title("$x^2$")
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    honest_svg = buffer.getvalue()
    view = {"model_id": "0f3e2c", "version_major": 2, "version_minor": 0}
    state = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0, "state": {
        "a1": {"model_name": "HTMLModel", "state": {"value": "<small>|z| = 1.20</small>"}},
        "b2": {"model_name": "HTMLModel", "state": {"value": "<img src=x onerror=alert(1)>ok"}}}}}
    nb = nbformat.v4.new_notebook(metadata={"widgets": state}, cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("display_data", data={"image/svg+xml": honest_svg, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": view,
                                                      "text/plain": "VBox()"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"}),
        nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": {"data": []},
                                                      "text/plain": "plot"}),
    ])])
    notes = sanitize.sanitize_node(nb)
    outputs = nb.cells[0].outputs
    assert outputs[0].data["image/svg+xml"] == honest_svg and outputs[1].data[sanitize.WIDGET_VIEW] == view
    assert len(outputs) == 3 and outputs[2].data == {"text/plain": "plot"}  # the JavaScript-only output is gone
    models = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert models["a1"]["state"]["value"] == "<small>|z| = 1.20</small>"
    assert models["b2"]["state"]["value"] == '<img src="x">ok'
    assert len(notes) == 3 and "widget b2 value: removed onerror=" in notes


def test_make_formgrader_sanitizes_the_graded_folder_without_following_links(tmp_path):
    autograded = tmp_path / "autograded"
    for student in ("ann", "bob"):
        (autograded / student / "01_elbo").mkdir(parents=True)
    nbformat.write(with_payloads(released(), 9), str(autograded / "ann" / "01_elbo" / "01_elbo.ipynb"))
    outside = tmp_path / "outside.ipynb"
    nbformat.write(with_payloads(released(), 9), str(outside))
    raw = outside.read_bytes()
    (autograded / "bob" / "01_elbo" / "01_elbo.ipynb").symlink_to(outside)
    notes = sanitize.sanitize_graded(autograded)
    assert notes and all(n.startswith("ann/01_elbo/01_elbo.ipynb: ") for n in notes)
    assert outside.read_bytes() == raw and sanitize.sanitize_graded(autograded) == []


def test_the_course_configuration_renders_through_the_sanitizer():
    """grader/nbgrader_config.py (loaded by every course folder's config) puts
    the render-time pass into nbconvert's HTML exporter: generate_feedback and
    the formgrader's submission view."""
    exporter = sanitize.feedback_exporter()
    assert [type(p) for p in exporter._preprocessors].count(sanitize.SanitizePreprocessor) == 1
    html = sanitize.render_feedback(with_payloads(released(), 9))
    assert active(html.split("</head>", 1)[1]) == []


def _page(head_extra=""):
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\"/>\n<title>t</title>" + head_extra +
            "</head>\n<body><script>var student = 1;</script><p>body</p></body></html>")


def test_feedback_is_hardened_once_and_links_are_never_followed(tmp_path):
    folder = tmp_path / "out" / "feedback"
    (folder / "ann" / "01_elbo").mkdir(parents=True)
    page = folder / "ann" / "01_elbo" / "01_elbo.html"
    page.write_text(_page())
    outside = tmp_path / "outside.html"
    outside.write_text(_page())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.html").write_text(_page())
    (folder / "ann" / "01_elbo" / "link.html").symlink_to(outside)
    (folder / "bob").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "notes.txt").write_text("<head>")

    assert sanitize.harden_feedback(folder) == 1
    hardened = page.read_text()
    policy = sanitize.feedback_policy(folder.parent)
    assert hardened.startswith("<!DOCTYPE html>\n<html>\n<head>" + sanitize.csp_meta(policy) + "\n<meta charset")
    assert hardened.index("<meta charset") < 1024  # the charset is still found by the pre-scan
    assert sanitize.harden_feedback(folder) == 1 and page.read_text() == hardened  # idempotent
    assert outside.read_text() == _page() and (tmp_path / "elsewhere" / "x.html").read_text() == _page()
    assert (folder / "notes.txt").read_text() == "<head>"
    # a page hardened with another policy gets the current one, not a second tag
    page.write_text(hardened.replace(sanitize.csp_meta(policy), sanitize.csp_meta("default-src 'none'")))
    sanitize.harden_feedback(folder)
    assert page.read_text() == hardened
    assert sanitize.harden_feedback(tmp_path / "missing") == 0


def test_the_policy_comes_from_the_template_alone():
    """No inline script is allowed by hash unless the feedback template itself
    emits it; the student's page cannot widen the policy."""
    policy = sanitize.feedback_policy()
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    script = directives["script-src"].split()
    assert "'unsafe-inline'" not in script and "'strict-dynamic'" not in script
    page = sanitize.render_feedback(nbformat.v4.new_notebook())
    inline, external, _ = sanitize._template_scripts(page)
    assert [s for s in script if s.startswith("'sha256-")] == sorted(
        "'sha256-" + base64.b64encode(__import__("hashlib").sha256(t.encode()).digest()).decode() + "'" for t in inline)
    assert external and all(any(url.startswith(s) for s in script) for url in external)  # the template's MathJax
    for directive in ("connect-src", "frame-src", "object-src", "form-action", "base-uri", "default-src"):
        assert directives[directive] == "'none'", directive
    assert directives["img-src"] == "data:"


# ------------------------------------------------------------------ in Chromium

class Beacon:
    """A local HTTP server that records every request path (the payloads' beacon)."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path.strip("/"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def beacon():
    server = Beacon()
    yield server
    server.close()


@pytest.fixture(scope="module")
def chromium():
    if labdriver.chromium_path() is None:
        pytest.skip("no Chromium on this machine: `make browser` installs Debian's chromium (or set VAELAB_CHROMIUM)")
    pytest.importorskip("playwright.sync_api")
    with labdriver.chromium() as browser:
        yield browser


def _mathjax_route(route):
    """Answer MathJax's CDN from the copy jupyter-server-mathjax ships: latest.js
    by its fallback (load MathJax.js from the same folder), the feedback
    template's combined configuration by the shipped one (STIX web fonts)."""
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    path = route.request.url.split("/ajax/libs/mathjax/", 1)[1].split("?", 1)[0].split("/", 1)[1]
    if path == "latest.js":
        return route.fulfill(content_type="application/javascript", body=(
            "(function(){var s=document.currentScript,n=document.createElement('script');"
            "n.src=s.src.replace('/latest.js','/MathJax.js');document.head.appendChild(n);})();"))
    if path.startswith("config/TeX-AMS_CHTML-full"):
        body = (static / "config" / "TeX-AMS-MML_HTMLorMML-full.js").read_text()
        body = body.replace("config/TeX-AMS-MML_HTMLorMML-full.js", "config/TeX-AMS_CHTML-full.js")
        body = 'MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null}});\n' + body
        return route.fulfill(content_type="application/javascript", body=body)
    local = static / path
    if ".." not in path and local.is_file():
        return route.fulfill(path=str(local))
    return route.fulfill(status=404, body="")


def visit(browser, url: str, beacon: Beacon, wait_ms: int = 2500) -> dict:
    """Open ``url``, click the payload link, and report what ran and what loaded."""
    page = browser.new_page()
    console, requests = [], []
    page.on("console", lambda m: console.append(m.text))
    page.on("request", lambda r: requests.append(r.url))
    page.route("https://cdnjs.cloudflare.com/ajax/libs/mathjax/**", _mathjax_route)
    try:
        page.goto(url)
        page.wait_for_timeout(wait_ms)
        page.evaluate(CLICK_LINK, LINK_TEXT)
        if any("/ajax/libs/mathjax/" in r for r in requests):
            page.wait_for_function("() => document.querySelectorAll('.MathJax').length > 0", timeout=20_000)
        page.wait_for_timeout(500)
        return {
            "pwned": page.evaluate("() => window.__pwned || []"),
            "title": page.title(),
            "mathjax": page.evaluate("() => document.querySelectorAll('.MathJax').length"),
            "raw_maths": page.evaluate("() => document.body.innerText.includes('$x^2$')"),
            "png": page.evaluate("""() => Promise.all(Array.from(document.images)
                .filter(i => i.src.startsWith('data:image/png'))
                .map(i => i.decode().then(() => i.naturalWidth, () => 0)))"""),
            "mathjax_requested": any("/ajax/libs/mathjax/" in r for r in requests),
            "console": console,
        }
    finally:
        page.close()


LAYERS = {"none": (), "sanitize_notebook": ("file",), "render-time pass": ("render",), "CSP": ("csp",),
          "all": ("file", "render", "csp")}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("layers", list(LAYERS))
def test_feedback_payloads_run_only_without_any_layer(layers, chromium, tmp_path, beacon):
    """The feedback page as generate_feedback renders it (its exporter, template
    and configuration), with each layer alone and all three together."""
    on = LAYERS[layers]
    path = tmp_path / "01_elbo.ipynb"
    nbformat.write(with_payloads(released(), beacon.port), str(path))
    if "file" in on:
        assert sanitize.sanitize_notebook(path)
    exporter = sanitize.feedback_exporter(render_time_pass="render" in on)
    assert any(isinstance(p, sanitize.SanitizePreprocessor) for p in exporter._preprocessors) == ("render" in on)
    html = sanitize.render_feedback(nbformat.read(str(path), as_version=4), notebook="01_elbo",
                                    render_time_pass="render" in on)
    folder = tmp_path / "feedback" / "ann" / "01_elbo"
    folder.mkdir(parents=True)
    (folder / "01_elbo.html").write_text(html)
    if "csp" in on:
        assert sanitize.harden_feedback(tmp_path / "feedback") == 1
    before = len(beacon.hits)
    seen = visit(chromium, (folder / "01_elbo.html").as_uri(), beacon)
    hits = beacon.hits[before:]
    if not on:
        assert LIVE <= set(seen["pwned"]), seen["pwned"]  # the test can fail: unprotected, the payloads run
        assert LIVE - {"md_link"} <= set(hits), hits
    else:
        assert seen["pwned"] == [] and hits == [], (seen["pwned"], hits)
    assert seen["png"] == [24], "the PNG figure is not shown"
    assert seen["mathjax_requested"] and seen["mathjax"] >= 3 and not seen["raw_maths"], seen
    # MathJax and everything it loads (config, jax, web fonts) pass the policy
    blocked = [u for m in seen["console"] if "Content Security Policy" in m
               for u in re.findall(r"'([^' ]+)' violates", m)]
    assert not [u for u in blocked if "/ajax/libs/mathjax/" in u], blocked
    if "csp" in on and "file" not in on and "render" not in on:
        assert any("Content Security Policy" in m for m in seen["console"])  # the policy is what stopped them


# ------------------------------------------------------------------ end to end: make grade, make formgrader

@pytest.fixture(scope="module")
def graded(tmp_path_factory, beacon):
    """A course folder where ``ann`` handed in the payload proof and a cell
    that displays every payload output, graded by grader.grade.batch."""
    from grader.grade.batch import main as grade_main
    from grader.notebooks import make_submission

    from .samples import alternative

    root = tmp_path_factory.mktemp("xss")
    subs, out = root / "subs", root / "out"
    path = make_submission("01_elbo", alternative("01_elbo"), subs, "ann")
    nb = nbformat.read(str(path), as_version=4)
    (proof,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PROOF]
    proof.source = proof_payload(beacon.port)
    nb.cells.append(nbformat.v4.new_code_cell(payload_code(beacon.port)))
    nbformat.write(nb, str(path))
    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo"]) == 0
    return out


def _autograded(out: Path) -> Path:
    return out / "autograded" / "ann" / "01_elbo" / "01_elbo.ipynb"


@pytest.mark.browser
@pytest.mark.slow
def test_graded_feedback_is_inert(chromium, graded, beacon):
    out = graded
    path = _autograded(out)
    sanitize.sanitize_notebook(path)  # what grade.finish does (a no-op if it already did)
    nb = nbformat.read(str(path), as_version=4)
    assert sanitize.sanitize_node(copy.deepcopy(nb)) == []
    executed = nb.cells[-1].outputs
    assert any("text/html" in o.get("data", {}) for o in executed), "nbgrader did not run the payload cell"
    result = subprocess.run([sys.executable, str(grader.ROOT / "grader" / "nbgrader_cli.py"), "generate_feedback",
                             "01_elbo", "--force"], cwd=out, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sanitize.harden_feedback(out / "feedback") == 1
    page = out / "feedback" / "ann" / "01_elbo" / "01_elbo.html"
    text = page.read_text()
    assert re.search(r"<head>\s*<meta id=\"grader-csp\" http-equiv=\"Content-Security-Policy\"", text)
    before = len(beacon.hits)
    seen = visit(chromium, page.as_uri(), beacon)
    assert seen["pwned"] == [] and beacon.hits[before:] == []
    assert seen["mathjax"] >= 3 and not seen["raw_maths"]
    assert seen["png"] == [24], "the figure is not shown"


@pytest.mark.browser
@pytest.mark.slow
def test_the_formgrader_submission_view_is_inert(chromium, graded, beacon, tmp_path):
    out = graded
    path = _autograded(out)
    raw = nbformat.writes(with_payloads(nbformat.read(str(path), as_version=4), beacon.port))
    path.write_text(raw)  # as a folder graded before sanitizing existed holds it
    before = len(beacon.hits)
    with labdriver.Formgrader(tmp_path / "server", out) as server:
        assert path.read_text() != raw and sanitize.sanitize_node(nbformat.read(str(path), as_version=4)) == [], \
            "make formgrader did not sanitize the graded notebook"
        path.write_text(raw)  # a raw copy arriving after the start: only the render-time pass stands in the way
        page = chromium.new_page()
        try:
            page.goto(f"{server.url}/formgrader/gradebook/01_elbo/01_elbo")
            page.click("a[href*='/formgrader/submissions/']")
            page.wait_for_selector(f"#{PROOF}", timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('.MathJax').length > 3", timeout=60_000)
            page.evaluate(CLICK_LINK, LINK_TEXT)
            page.wait_for_timeout(3000)
            assert page.evaluate("() => window.__pwned || []") == []
            assert sorted(p.name for p in out.glob("pwned-*")) == []
            assert beacon.hits[before:] == []
            assert "$x^2$" not in page.inner_text("#notebook")
            # the test can fail: the same payload, put into this page directly, runs and writes its file
            page.evaluate("(html) => document.body.insertAdjacentHTML('beforeend', html)",
                          f"<img src=x onerror=\"{js('control', beacon.port)}\">")
            deadline = time.monotonic() + 20
            while not (out / "pwned-control.txt").exists() and time.monotonic() < deadline:
                time.sleep(0.25)
            assert (out / "pwned-control.txt").read_text() == "control", server.log_tail()
            assert page.evaluate("() => window.__pwned || []") == ["control"] and "control" in beacon.hits
        finally:
            page.close()
    assert sorted(p.name for p in out.glob("pwned-*")) == ["pwned-control.txt"]
