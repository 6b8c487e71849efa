"""``make formgrader [OUT=build/grading]``: nbgrader's formgrader on a graded course folder.

nbgrader reads ``nbgrader_config.py`` from the server's working directory,
and its formgrader only works when the course root lies under the server's
root, so JupyterLab is started *in* the graded folder and rooted there. Two
things nbgrader leaves to the site are settled here:

- **No exchange banner.** The course folder gets its own ``exchange/`` (set as
  ``Exchange.root`` in its config), so nbgrader's assignment pages do not warn
  about a missing system-wide exchange directory. Nothing is written outside
  the folder.
- **Student HTML inert.** Every graded notebook under ``autograded/`` goes
  through grader/sanitize.py before the server starts (``make grade`` already
  does so; this covers folders graded before it did), and the formgrader's
  renderer applies the same pass again in memory (``HTMLExporter.preprocessors``
  in grader/nbgrader_config.py, which the course configuration loads), so a
  ``<script>`` in a proof or a ``display(HTML(...))`` output cannot run in the
  instructor's session and call the server's API.
- **Maths offline.** The formgrader renders notebooks with nbconvert's
  ``mathjax()`` macro, whose default loads MathJax from a CDN: offline, every
  ``$…$`` stays raw. A one-file template override (put first on
  ``JUPYTER_PATH``) points the macro at the MathJax that the
  ``jupyter-server-mathjax`` package serves from this server.

The server replaces this process (``exec``), so Ctrl-C and a terminal that
closes end it directly; nothing is left behind.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from grader.nbgrader_api import EXCHANGE_LINE, exchange_config

# served by the jupyter_server_mathjax server extension (its static_paths)
LOCAL_MATHJAX = "static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
# (the config files that package ships: config/TeX-AMS-MML_HTMLorMML-full.js and Safe.js)


class NotACourseFolder(Exception):
    pass


def check_folder(out: Path) -> None:
    """Raise NotACourseFolder with the fix when ``out`` was not made by ``make grade``."""
    if not out.is_dir():
        raise NotACourseFolder(f"{out} does not exist: grade first with "
                               f"`make grade SUBMISSIONS=path/to/folder-or-zip OUT={out}`.")
    if not (out / "nbgrader_config.py").is_file() or not (out / "autograded").is_dir():
        raise NotACourseFolder(f"{out} is not a graded course folder (no nbgrader_config.py or autograded/): "
                               f"run `make grade SUBMISSIONS=... OUT={out}` first, or pass the OUT you graded into.")


def ensure_exchange(out: Path) -> Path:
    """Give the course its own exchange folder (folders graded before this
    command existed get the config line appended)."""
    exchange = out / "exchange"
    exchange.mkdir(exist_ok=True)
    config = out / "nbgrader_config.py"
    text = config.read_text()
    if EXCHANGE_LINE not in text:
        config.write_text(text.rstrip("\n") + "\n" + exchange_config(out) + "\n")
    return exchange


def mathjax_templates(out: Path, base_url: str = "/") -> Path:
    """A JUPYTER_PATH entry whose nbconvert ``base/mathjax.html.j2`` loads the
    locally served MathJax; the rest of the macro is nbconvert's own."""
    import nbconvert
    from jupyter_core.paths import jupyter_path

    original = None
    for root in jupyter_path("nbconvert", "templates"):
        candidate = Path(root) / "base" / "mathjax.html.j2"
        if candidate.is_file():
            original = candidate
            break
    if original is None:
        raise FileNotFoundError(f"nbconvert {nbconvert.__version__}'s base/mathjax.html.j2 template not found")
    text = original.read_text()
    start = text.index('macro mathjax(url="') + len('macro mathjax(url="')
    end = text.index('"', start)
    local = base_url.rstrip("/") + "/" + LOCAL_MATHJAX
    path = out / ".formgrader" / "share"
    target = path / "nbconvert" / "templates" / "base" / "mathjax.html.j2"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = text[:start] + local + text[end:]
    # the package ships STIX web fonts only: ask for them, so no TeX font is requested and missed
    hub = "MathJax.Hub.Config({"
    if hub in text:
        text = text.replace(hub, hub + '\n"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null},', 1)
    target.write_text(text)
    return path


def command(out: Path, port: int, extra: list[str]) -> list[str]:
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    args = [jupyter, "lab", f"--port={port}", f"--ServerApp.root_dir={out}",
            "--LabApp.default_url=/lab?formgrader=true"]
    if os.geteuid() == 0:  # containers run as root; nobody else gets it
        args.append("--allow-root")
    return args + extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Open nbgrader's formgrader in JupyterLab on a graded course folder.")
    parser.add_argument("--out", default="build/grading", help="the folder `make grade` wrote (default build/grading)")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="further jupyter lab options")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        check_folder(out)
    except NotACourseFolder as err:
        print(f"make formgrader: {err}", file=sys.stderr)
        return 2
    ensure_exchange(out)
    from grader.sanitize import sanitize_graded

    for note in sanitize_graded(out / "autograded"):
        print(f"make formgrader: student HTML made inert: {note}", flush=True)
    templates = mathjax_templates(out)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join([str(templates)] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p])
    env.pop("NBGRADER_EXECUTION", None)
    extra = [a for a in args.extra if a != "--"]
    argv_lab = command(out, args.port, extra)
    print(f"Formgrader on {out}: marking happens under 'Manual Grading' (the Formgrader tab; "
          f"Nbgrader > Formgrader reopens it). Ctrl-C stops the server.", flush=True)
    os.chdir(out)
    os.execve(argv_lab[0], argv_lab, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
