"""The student edition (grader/edition.py): only what has been released,
nothing that answers a TODO, history kept week by week, and its own two
commands work from a fresh clone."""
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch

from grader import HIDDEN_REFERENCES, SOLUTIONS, assignments
from grader.edition import MANAGED, binder_url
from grader.edition import main as edition_main
from grader.leakscan import scan_edition

ALL = assignments()
URL = "https://github.com/vae-course/vae-course-student"


def _git(folder, *args):
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def week_one(tmp_path_factory):
    dest = tmp_path_factory.mktemp("edition") / "student"
    assert edition_main([str(dest), "--upto", ALL[0], "--repo-url", URL]) == 0
    return dest


def test_the_first_edition_holds_only_the_released_material(week_one):
    dest = week_one
    assert sorted(p.name for p in dest.iterdir()) == sorted({*MANAGED, ".git"})
    assert sorted(p.name for p in (dest / "assignments").iterdir()) == [ALL[0]]
    assert sorted(p.name for p in (dest / "source_lib" / "vaelab" / "references").iterdir()) == [f"{ALL[0]}.pt"]
    makefile = (dest / "Makefile").read_text()
    import re

    targets = set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", makefile, re.M))
    assert targets == {"install", "lab", "check"}
    assert len(_git(dest, "log", "--oneline").splitlines()) == 1
    assert scan_edition(dest, ALL[:1]) == []


def test_the_student_readme_links_binder_and_jupyterhub_to_the_first_assignment(week_one):
    readme = (week_one / "README.md").read_text()
    first = f"assignments/{ALL[0]}/{ALL[0]}.ipynb"
    assert binder_url(URL, first) in readme
    assert "mybinder.org/v2/gh/vae-course/vae-course-student/HEAD?urlpath=lab%2Ftree%2Fassignments" in readme
    assert "git-pull?repo=https%3A%2F%2Fgithub.com%2Fvae-course%2Fvae-course-student" in readme
    assert ALL[0] in readme and ALL[1] not in readme
    assert "make lab" in readme and "make check" in readme and "self-check" in readme
    for instructor_word in ("make grade", "make release", "nbgrader", "solutions/", "hidden references"):
        assert instructor_word not in readme


def test_a_later_week_commits_on_top_without_rewriting_history(tmp_path):
    dest = tmp_path / "student"
    assert edition_main([str(dest), "--upto", ALL[0]]) == 0
    first = _git(dest, "rev-parse", "HEAD").strip()
    (dest / "assignments" / ALL[0] / "scratch.txt").write_text("an instructor's stray file")
    assert edition_main([str(dest), "--upto", ALL[1]]) == 0
    log = _git(dest, "log", "--format=%H").split()
    assert len(log) == 2 and log[1] == first
    assert sorted(p.name for p in (dest / "assignments").iterdir()) == ALL[:2]
    assert not (dest / "assignments" / ALL[0] / "scratch.txt").exists()
    assert edition_main([str(dest), "--upto", ALL[1]]) == 0  # nothing new: no empty commit
    assert len(_git(dest, "log", "--format=%H").split()) == 2


def test_instructor_only_sentences_never_reach_students(tmp_path):
    dest = tmp_path / "student"
    assert edition_main([str(dest)]) == 0
    source = (SOLUTIONS / "04_generation" / "04_generation.ipynb").read_text()
    assert "<!-- instructor -->" in source  # the sentence exists in the instructor copy
    text = (dest / "assignments" / "04_generation" / "04_generation.ipynb").read_text()
    assert "Release this notebook" not in text and "instructor -->" not in text
    assert scan_edition(dest, ALL) == []


def test_public_symbolic_cases_store_values_not_expressions():
    import sympy as sp

    from grader.leakscan import _stored_expressions
    from vaelab import references
    from vaelab.symbolic import Probes

    for name in ALL:
        data = references.load(references.public_path(name))
        for spec in data["functions"].values():
            if spec["kind"] != "sympy":
                continue
            for case in spec["cases"]:
                assert isinstance(case["expected"], Probes)
                assert not any(isinstance(m, sp.Basic) for m in case["mutants"].values())
        assert _stored_expressions(references.public_path(name)) == []


def test_the_edition_leak_scan_catches_planted_leaks(week_one, tmp_path):
    dest = tmp_path / "planted"
    shutil.copytree(week_one, dest, ignore=shutil.ignore_patterns(".git"))
    nb_path = dest / "assignments" / ALL[0] / f"{ALL[0]}.ipynb"
    nb = nbformat.read(str(nb_path), as_version=4)
    solution = nbformat.read(str(SOLUTIONS / ALL[0] / f"{ALL[0]}.ipynb"), as_version=4)
    body = next(c for c in solution.cells if c.get("id") == "kl_standard_normal").source
    line = body.split("### BEGIN SOLUTION\n")[1].splitlines()[0].strip()
    nb.cells.append(nbformat.v4.new_code_cell(f"# copied\n{line}\n"))
    nb.cells.append(nbformat.v4.new_markdown_cell("Note<!-- instructor --> grade leniently<!-- /instructor -->"))
    nbformat.write(nb, str(nb_path))
    shutil.copy(HIDDEN_REFERENCES / f"{ALL[0]}.pt", dest / "source_lib" / "stolen.pt")
    # a public file in the old format, storing the symbolic answer itself
    hidden = torch.load(HIDDEN_REFERENCES / f"{ALL[0]}.pt", weights_only=True)
    torch.save({"functions": {"kl_gaussian_1d": {"cases": [hidden["functions"]["kl_gaussian_1d"]["cases"][0]]}}},
               dest / "source_lib" / "vaelab" / "references" / "old.pt")
    (dest / "grader").mkdir()
    leaks = "\n".join(scan_edition(dest, ALL[:1]))
    assert "contains solution code" in leaks
    assert "is a copy of a hidden reference file" in leaks
    assert "stores a symbolic answer" in leaks
    assert "'<!-- instructor'" in leaks
    assert "grader: instructor material" in leaks


def test_refuses_to_write_into_a_folder_that_is_not_an_edition(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        edition_main([str(tmp_path)])
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    with pytest.raises(SystemExit):
        edition_main([str(tmp_path / "x"), "--upto", "99_nope"])


@pytest.mark.slow
def test_a_fresh_clone_installs_from_its_own_files_and_runs_every_notebook(tmp_path):
    """As a student would: clone the edition, `make install` (its own
    requirements, a clean virtual environment), `make check` runs every
    released notebook top to bottom, and the self-checks work."""
    source = tmp_path / "edition"
    assert edition_main([str(source), "--repo-url", URL]) == 0
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "VAELAB_HIDDEN_REFERENCES")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    python = shutil.which("python3", path=env["PATH"]) or sys.executable
    done = subprocess.run(["make", "install", f"PYTHON={python}"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    venv_python = clone / ".venv" / "bin" / "python"
    where = subprocess.run([str(venv_python), "-c", "import vaelab, sys; print(vaelab.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(clone) in where  # the edition's own vaelab, not the instructor's
    done = subprocess.run(["make", "check"], cwd=clone, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{len(ALL)} of {len(ALL)} notebooks ran top to bottom" in done.stdout
    probe = ("import torch\nfrom vaelab import check\n"
             "def kl_standard_normal(mu, logvar):\n"
             "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n"
             "assert check('kl_standard_normal', kl_standard_normal).passed\n"
             "def kl_standard_normal(mu, logvar):\n"
             "    return -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n"
             "assert not check('kl_standard_normal', kl_standard_normal).passed\n")
    done = subprocess.run([str(venv_python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Hint: Your KL is exactly twice" in done.stdout
    assert not (clone / "grader").exists() and not (clone / "solutions").exists()
