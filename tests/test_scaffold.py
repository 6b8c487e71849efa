"""The course author's scaffold (grader/author/scaffold.py, `make todo`, `make assignment`) and the hand-kept
places it keeps in step with the notebooks.

The end-to-end test does what docs/authoring.md tells a maintainer to do, on a copy of the course: `make todo`,
fill in the solution cell and the three author files the scaffold stubbed (a solution, two cases, two mistakes,
one variant), `make references ASSIGNMENT=01_elbo`, `make release`, `make grade`; a correct submission gets full
marks and a wrong one loses exactly the new TODO's points, with nothing else edited by hand and no test file
touched."""
import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from grader.author.scaffold import ScaffoldError, add_assignment, add_todo, course_problems

ROOT = Path(__file__).resolve().parent.parent
A, NAME = "01_elbo", "kl_diag_gaussians"
SKIP = shutil.ignore_patterns("__pycache__", "checkpoints", ".ipynb_checkpoints")


def _copy_course(dest: Path, with_tests: bool = False) -> Path:
    """The course's sources (what the scaffold and the make targets read and write), with the real .venv."""
    for folder in ("solutions", "grader", "source_lib", "binder") + (("tests",) if with_tests else ()):
        shutil.copytree(ROOT / folder, dest / folder, ignore=SKIP)
    for name in ("Makefile", "README.md", "pyproject.toml", "requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def _hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".venv" not in p.parts and "__pycache__" not in p.parts}


@pytest.fixture
def course(tmp_path):
    return _copy_course(tmp_path / "course")


# ------------------------------------------------------------------ the cells
def test_a_todo_gets_the_cells_and_metadata_of_the_existing_todos(course):
    """Oracle: kl_standard_normal's own four cells, written by hand, with the name substituted."""
    add_todo(A, NAME, after="kl_standard_normal", args="mu_q, logvar_q, mu_p, logvar_p", root=course)
    nb = nbformat.read(str(course / "solutions" / A / f"{A}.ipynb"), as_version=4)
    ids = [c.id for c in nb.cells]
    at = ids.index("test-kl_standard_normal") + 1
    assert ids[at:at + 4] == [f"md-{NAME}", NAME, f"check-{NAME}", f"test-{NAME}"]
    assert nb.cells[at].cell_type == "markdown"
    old = {c.id: c for c in nbformat.read(str(ROOT / "solutions" / A / f"{A}.ipynb"), as_version=4).cells}
    for suffix in ("", "check-", "test-"):
        new, model = nb.cells[ids.index(suffix + NAME)], old[suffix + "kl_standard_normal"]
        want = {k: (v.replace("kl_standard_normal", NAME) if isinstance(v, str) else v)
                for k, v in model.metadata["nbgrader"].items()}
        assert new.metadata["nbgrader"] == want and new.metadata["nbgrader"]["grade_id"] == new.id
    source = nb.cells[ids.index(NAME)].source
    assert source.startswith(f"def {NAME}(mu_q, logvar_q, mu_p, logvar_p):")
    assert "### BEGIN SOLUTION" in source and source.rstrip().endswith("### END SOLUTION")
    assert nb.cells[ids.index(f"check-{NAME}")].source == f'check("{NAME}", {NAME})'
    test = nb.cells[ids.index(f"test-{NAME}")].source.splitlines()
    assert test[0].startswith(f"# Hidden test: {NAME} ") and test[0].endswith("(2 points).")
    assert test[1:] == ["### BEGIN HIDDEN TESTS", "from vaelab.checks import grade", f'grade("{NAME}", {NAME})',
                        "### END HIDDEN TESTS"]
    nbformat.validate(nb)
    # everything else in the notebook is as it was
    assert [c.id for c in nb.cells if not c.id.endswith(NAME)] == list(old)
    # the stubs: a cases stub that says what to fill in and refuses to run until it is filled
    cases = (course / "grader" / "author" / "cases" / f"{A}.py").read_text()
    assert f"def _{NAME}_cases(hidden: bool)" in cases and "TODO(author)" in cases
    for kind in ("mutants", "variants"):
        text = (course / "grader" / "author" / kind / f"{A}.py").read_text()
        assert f'# @{kind[:-1]}("{NAME}", ' in text and "TODO(author)" in text
    row = next(line for line in (course / "README.md").read_text().splitlines() if f"[`{A}`]" in line)
    assert f"`{NAME}`" in row
    assert not [p for p in course_problems(course) if p.startswith("README.md")]


@pytest.mark.parametrize("call,message", [
    (lambda root: add_todo(A, "kl_standard_normal", root=root), "already has the cell"),
    (lambda root: add_todo(A, "class", root=root), "not a valid TODO name"),
    (lambda root: add_todo(A, "2fast", root=root), "not a valid TODO name"),
    (lambda root: add_todo(A, "normal_pdf", root=root), "already defines normal_pdf"),  # a demo cell's helper
    (lambda root: add_todo(A, "_gauss", root=root), "not a valid TODO name"),
    (lambda root: add_todo(A, NAME, after="no_such_todo", root=root), "AFTER=no_such_todo"),
    (lambda root: add_todo("07_nothing", NAME, root=root), "unknown assignment"),
    (lambda root: add_todo(A, NAME, args="mu,,", root=root), "not a Python parameter list"),
    (lambda root: add_assignment("06-flows", root=root), "not a valid assignment name"),
    (lambda root: add_assignment("6_flows", root=root), "not a valid assignment name"),
    (lambda root: add_assignment("03_flows", root=root), "03 is taken by 03_vae"),
])
def test_a_bad_or_clashing_name_is_refused_with_nothing_written(course, call, message):
    before = _hashes(course)
    with pytest.raises(ScaffoldError, match=re.escape(message)):
        call(course)
    assert _hashes(course) == before


def test_a_name_left_in_an_author_file_is_a_clash(course):
    path = course / "grader" / "author" / "mutants" / f"{A}.py"
    path.write_text(path.read_text() + f'\n# @mutant("{NAME}", "old", hint="left over.")\n')
    before = _hashes(course)
    with pytest.raises(ScaffoldError, match="already mentions 'kl_diag_gaussians'"):
        add_todo(A, NAME, root=course)
    assert _hashes(course) == before


def test_make_todo_refuses_through_make_too(course):
    before = _hashes(course)
    run = subprocess.run(["make", "-s", "-o", ".venv/.installed", "todo", f"ASSIGNMENT={A}", "NAME=class"],
                         cwd=course, capture_output=True, text=True, env=_env(course), timeout=120)
    assert run.returncode != 0 and "refused, nothing written" in run.stderr
    assert _hashes(course) == before


def test_a_new_assignment_is_linked_listed_and_loadable(course):
    written = add_assignment("06_normalizing_flows", title="Normalizing flows", root=course)
    assert {str(p.relative_to(course)) for p in written} == {
        "solutions/06_normalizing_flows/06_normalizing_flows.ipynb", "solutions/05_likelihoods/05_likelihoods.ipynb",
        "grader/author/cases/06_normalizing_flows.py", "grader/author/mutants/06_normalizing_flows.py",
        "grader/author/variants/06_normalizing_flows.py", "README.md", "grader/course.toml"}
    problems = course_problems(course)
    assert not [p for p in problems if p.startswith(("solutions/05", "solutions/06")) or "06_" in p], problems
    header = nbformat.read(str(course / "solutions" / "05_likelihoods" / "05_likelihoods.ipynb"), as_version=4)
    assert "next: [06 · Normalizing flows](../06_normalizing_flows/06_normalizing_flows.ipynb)" in header.cells[0].source
    nb = nbformat.read(str(course / "solutions" / "06_normalizing_flows" / "06_normalizing_flows.ipynb"), as_version=4)
    assert "previous: [05 · " in nb.cells[0].source and nb.cells[1].metadata["tags"] == ["given"]
    with open(course / "grader" / "course.toml", "rb") as fh:
        tomllib.load(fh)  # still valid TOML
    assert '# "06_normalizing_flows" = 2026-' in (course / "grader" / "course.toml").read_text()
    # its author files load through the grader, with no cases yet; a TODO then goes in before the summary
    code = ("from grader import load_module; from grader.author.mutants import catalogue\n"
            "c = load_module('cases', '06_normalizing_flows'); assert c.public() == {} == c.hidden()\n"
            "assert catalogue('06_normalizing_flows') == [] == catalogue('06_normalizing_flows', 'variants')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=course, env=_env(course), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    add_todo("06_normalizing_flows", "predict_flow_depth", root=course)
    nb = nbformat.read(str(course / "solutions" / "06_normalizing_flows" / "06_normalizing_flows.ipynb"), as_version=4)
    assert [c.id for c in nb.cells][-5:] == ["md-predict_flow_depth", "predict_flow_depth", "check-predict_flow_depth",
                                             "test-predict_flow_depth", "md-summary"]
    assert nb.cells[-2].metadata["nbgrader"]["points"] == 1
    assert not [p for p in course_problems(course) if "06_" in p]
    with pytest.raises(ScaffoldError, match="06 is taken"):
        add_assignment("06_other", root=course)


def test_a_missing_cases_file_is_an_error_that_names_it(course):
    shutil.copytree(course / "solutions" / "01_elbo", course / "solutions" / "06_extra")
    (course / "solutions" / "06_extra" / "01_elbo.ipynb").rename(course / "solutions" / "06_extra" / "06_extra.ipynb")
    for code in ("from grader import load_module; load_module('cases', '06_extra')",
                 "from grader.author.mutants import catalogue; catalogue('06_extra')"):
        run = subprocess.run([sys.executable, "-c", code], cwd=course, env=_env(course), capture_output=True, text=True)
        assert run.returncode != 0
        assert "grader/author/" in run.stderr and "/06_extra.py is missing" in run.stderr, run.stderr
    run = subprocess.run([sys.executable, "-m", "grader.author.record", "--check", "06_extra"], cwd=course,
                         env=_env(course), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "grader/author/cases/06_extra.py is missing" in run.stderr, run.stderr[-2000:]


def test_the_notebook_headers_and_the_due_dates_follow_the_course_order():
    """Each notebook's previous/next links and course.toml's due lines (commented or not) match the
    folders of solutions/ (`make assignment` keeps them so)."""
    problems = [p for p in course_problems(ROOT) if not p.startswith("README.md")]
    assert not problems, "\n".join(problems)


def test_the_header_check_can_fail(course):
    path = course / "solutions" / "02_reparameterization" / "02_reparameterization.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("../03_vae/03_vae.ipynb", "../04_generation/04_generation.ipynb")
    nbformat.write(nb, str(path))
    toml = course / "grader" / "course.toml"
    toml.write_text(toml.read_text().replace('# "03_vae"', '# "03_vea"'))
    problems = "\n".join(course_problems(course))
    assert "02_reparameterization.ipynb: the header's next link goes to 04_generation, the course order says 03_vae" in problems
    assert "grader/course.toml: [due] has lines for" in problems


# ------------------------------------------------------------------ from nothing to graded submissions
SOLUTION = """def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):
    \"\"\"Per-example KL( N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p)) ), shape (batch,).\"\"\"
    ### BEGIN SOLUTION
    ratio = (logvar_q - logvar_p).exp()
    return 0.5 * torch.sum(ratio + (mu_q - mu_p).pow(2) / logvar_p.exp() - 1 - (logvar_q - logvar_p), dim=-1)
    ### END SOLUTION"""

CASES = """def _kl_diag_gaussians_cases(hidden: bool) -> dict:
    if hidden:
        return {"kind": "call", "cases": [case("batch 97, latent 7", *(_gauss(30 + i, 97, 7) for i in range(4)))]}
    return {"kind": "call", "cases": [case("batch 4, latent 3", *(_gauss(20 + i, 4, 3) for i in range(4)))]}
"""

MUTANTS = '''@mutant("kl_diag_gaussians", "missing_half", hint="Your KL is twice the expected value: the ½ in front is missing.")
def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):
    return torch.sum((logvar_q - logvar_p).exp() + (mu_q - mu_p).pow(2) / logvar_p.exp() - 1 - (logvar_q - logvar_p), dim=-1)


@mutant("kl_diag_gaussians", "reversed", hint="You computed KL(p ‖ q): the KL is not symmetric, so check which Gaussian you average over.")
def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):
    return 0.5 * torch.sum((logvar_p - logvar_q).exp() + (mu_q - mu_p).pow(2) / logvar_q.exp() - 1 - (logvar_p - logvar_q), dim=-1)
'''

VARIANT = '''@variant("kl_diag_gaussians", "torch_distributions", why="The closed form that torch.distributions knows.")
def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):
    D = torch.distributions
    q = D.Independent(D.Normal(mu_q, (0.5 * logvar_q).exp()), 1)
    p = D.Independent(D.Normal(mu_p, (0.5 * logvar_p).exp()), 1)
    return D.kl_divergence(q, p)
'''


def _env(course: Path, own_vaelab: bool = True) -> dict:
    """The copy's grader and (unless ``own_vaelab`` is false) its vaelab, not ours. Grading kernels import
    vaelab through the shared .venv (ours, the same code) and may see only the grader's vaelab, so
    `make grade` runs with ours: it reads only the copy's hidden references (grader/references), and refuses
    only when those are stale."""
    env = {k: v for k, v in os.environ.items() if k not in ("VAELAB_HIDDEN_REFERENCES", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = f"{course}{os.pathsep}{course / 'source_lib'}" if own_vaelab else str(course)
    return env


def _make(course: Path, *args, timeout=900) -> str:
    run = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", *args], cwd=course,
                         env=_env(course, own_vaelab=args[0] != "grade"), capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, f"make {' '.join(args)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected the scaffold's stub once"
    path.write_text(text.replace(old, new))


@pytest.mark.slow
def test_a_new_todo_goes_from_nothing_to_graded_submissions(tmp_path):
    course = _copy_course(tmp_path / "course", with_tests=True)
    start = _hashes(course)
    _make(course, "todo", f"ASSIGNMENT={A}", f"NAME={NAME}", "AFTER=kl_standard_normal",
          "ARGS=mu_q, logvar_q, mu_p, logvar_p")
    scaffolded = _hashes(course)

    # the maintainer's part: the solution cell, then the three author files' stubs
    notebook = course / "solutions" / A / f"{A}.ipynb"
    nb = nbformat.read(str(notebook), as_version=4)
    (cell,) = [c for c in nb.cells if c.id == NAME]
    cell.source = SOLUTION
    nbformat.write(nb, str(notebook))
    author = course / "grader" / "author"
    cases = (author / "cases" / f"{A}.py").read_text()
    stub = re.search(rf"def _{NAME}_cases\(hidden: bool\) -> dict:\n(    .*\n|\n)*?(?=\n_public_before)", cases).group(0)
    _replace_once(author / "cases" / f"{A}.py", stub, CASES)
    for kind, filled in (("mutants", MUTANTS), ("variants", VARIANT)):
        text = (author / kind / f"{A}.py").read_text()
        example = re.search(rf'# @{kind[:-1]}\("{NAME}".*\Z', text, re.S).group(0)
        _replace_once(author / kind / f"{A}.py", example, filled)
    edited = {k for k, v in _hashes(course).items() if scaffolded.get(k) != v}
    assert edited == {f"solutions/{A}/{A}.ipynb", f"grader/author/cases/{A}.py", f"grader/author/mutants/{A}.py",
                      f"grader/author/variants/{A}.py"}
    filled = nbformat.read(str(notebook), as_version=4)
    assert [c for c in filled.cells if c.id != NAME] == [c for c in nb.cells if c.id != NAME]

    recorded = _make(course, "references", f"ASSIGNMENT={A}")
    assert f"{A}: recording" in recorded
    _make(course, "release")

    from grader.notebooks import fill, read, write

    released = course / "assignments" / A / f"{A}.ipynb"
    solution = {c.id: c.source for c in read(notebook).cells if c.cell_type == "code"
                and c.metadata.get("nbgrader", {}).get("solution")}
    wrong = _mutant_sources(MUTANTS)["missing_half"]
    subs = tmp_path / "submitted"
    write(fill(read(released), solution), subs / "correct" / A / f"{A}.ipynb")
    write(fill(read(released), {**solution, NAME: wrong}), subs / "wrong" / A / f"{A}.ipynb")
    _make(course, "grade", f"SUBMISSIONS={subs}", f"ASSIGNMENT={A}", f"OUT={tmp_path / 'out'}")

    sys.path.insert(0, str(ROOT))
    from tests.points import autograded_points, todo_points

    full = autograded_points(A, course / "assignments")
    assert todo_points(A, NAME, course / "assignments") == 2
    with open(tmp_path / "out" / "grades.csv") as fh:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)}
    assert scores == {"correct": pytest.approx(full), "wrong": pytest.approx(full - 2)}
    feedback = re.sub(r"<[^>]+>", "", (tmp_path / "out" / "feedback" / "wrong" / A / f"{A}.html").read_text())
    assert "the ½ in front is missing" in feedback
    # no test file touched, and nothing else by hand: what changed is the scaffold's, the maintainer's four
    # files and what make references / make release / make grade generate
    changed = {k for k, v in _hashes(course).items() if start.get(k) != v}
    assert not [k for k in changed if k.startswith("tests/")]
    generated = ("assignments/", "grader/references/", "source_lib/vaelab/references/", "build/")
    assert {k for k in changed if not k.startswith(generated)} == edited | {"README.md"}



def _mutant_sources(source: str) -> dict:
    """``{mutant name: its definition under the student's name}`` of a block of @mutant definitions."""
    blocks = re.split(r"\n(?=@mutant)", source.strip())
    return {re.search(r'@mutant\("[^"]+", "([^"]+)"', b).group(1): b[b.index("\ndef ") + 1:] for b in blocks}
