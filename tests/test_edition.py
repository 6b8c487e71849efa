"""The student edition (grader/publish/edition.py): only what has been released,
nothing that answers a TODO, history kept week by week, a README that says
how to hand in, what happens to solutions, how to pull safely and whose work
the course builds on, and its own commands (``make lab``, ``make check``,
``make progress``) work from a fresh clone."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

import grader
from grader import HIDDEN_REFERENCES, SOLUTIONS, assignments
from grader.publish.edition import MANAGED, binder_url
from grader.publish.edition import main as edition_main
from grader.publish.leakscan import scan_edition

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
    targets = set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", makefile, re.M))
    assert targets == {"install", "lab", "check", "progress"}
    assert "-m vaelab.progress" in makefile
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
    # (nbgrader is named once: the exchange students may submit through)
    for instructor_word in ("make grade", "make release", "solutions/", "hidden references", "formgrader"):
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

    from grader.publish.leakscan import _stored_expressions
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
    done = subprocess.run(["make", "progress"], cwd=clone, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0 and "not attempted" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
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


# -- what the student README answers ----------------------------------------
def _section(readme, heading):
    """The text of one ``## heading`` section (up to the next ``## ``)."""
    start = readme.index(f"## {heading}")
    end = readme.find("\n## ", start + 3)
    return readme[start:end if end > 0 else None]


def test_the_readme_says_what_to_hand_in_where_and_what_is_graded(week_one):
    section = " ".join(_section((week_one / "README.md").read_text(), "Handing in").split())
    first = ALL[0]
    assert f"assignments/{first}/{first}.ipynb" in section and "name unchanged" in section
    assert "Restart Kernel and Run All Cells" in section and "fresh kernel" in section
    assert "TODO cells" in section and "written answers" in section
    from grader.author.budgets import extra_cell_timeout

    assert "Cells you add are run but earn nothing" in section
    assert f"over {extra_cell_timeout():g} s is skipped" in section
    # the three ways: the LMS as-is (a Canvas re-upload's -1 is fine), the hub's exchange, a clone
    assert "Canvas" in section and "Moodle" in section and "Do not rename" in section
    assert f"`{first}-1.ipynb` is expected" in section
    assert "*Assignments* tab" in section and "*Submit*" in section and "exchange" in section
    assert f"git add assignments/{first}/{first}.ipynb && git commit" in section


def test_the_solutions_policy_is_a_marked_paragraph_of_the_course(week_one):
    from grader.publish.edition import SOLUTIONS_POLICY

    section = _section((week_one / "README.md").read_text(), "Solutions and feedback")
    assert "<!-- course policy" in section and SOLUTIONS_POLICY in section
    assert "Solutions are not published" in section
    assert "HTML" in section and "LMS" in section and "Fetch Feedback" in section


def test_the_readme_credits_the_sources_by_title_and_author(week_one):
    section = " ".join(_section((week_one / "README.md").read_text(), "Sources and credits").split())
    for title, authors in (
            ("Formulation of the Variational Autoencoder and Evidence Lower Bound and an Application to the "
             "MNIST Dataset", ["Eric M. Fischer"]),
            ("Bayesian Methods for Machine Learning", ["Daniil Polykovskiy", "Alexander Novikov"]),
            ("Variational Autoencoder by ZhuSuan", ["Jun Zhu", "Cheng Lu"]),
            ("lecture on the variational autoencoder", ["Dong-Ju Kim", "Kwangwoon University"]),
            ("Auto-Encoding Variational Bayes Implementation", ["Yizi Zhang", "Chenxi Wu"])):
        assert title in section and all(a in section for a in authors), title


def test_the_readme_sample_self_check_is_what_check_prints_for_a_stored_mistake(week_one, capsys):
    """The example is not typed in: it is the output of ``check`` for one of
    the catalogued mistakes stored in the released public case file."""
    from vaelab import references
    from vaelab.checks import check

    readme = (week_one / "README.md").read_text()
    block = _section(readme, "How the self-checks work").split("```\n")[1].rstrip("\n")
    name = block.split(" · ")[0].lstrip("✗✓ ")
    assignment = next(a for a in ALL[:1] if name in references.load(references.public_path(a))["functions"])
    spec = references.load(references.public_path(assignment))["functions"][name]
    printed = []
    for mutant in spec["hints"]:
        outputs = iter([case["mutants"].get(mutant, case["expected"]) for case in spec["cases"]])
        check(name, lambda *args, **kwargs: next(outputs))
        printed.append(capsys.readouterr().out.rstrip("\n"))
    assert block in printed
    assert "Hint: " in block and "✗" in block
    # and make progress's example reports the same mistake with the first line of that check
    failing = block.splitlines()[0].split(" · ", 1)[1]
    assert re.search(rf"^{assignment}\s+{name}\s+not yet \({re.escape(failing[:40])}", readme, re.M)


def test_git_pull_guidance_and_a_new_week_only_adds_folders(tmp_path, capsys):
    dest = tmp_path / "student"
    assert edition_main([str(dest), "--upto", ALL[0]]) == 0
    assert edition_main([str(dest), "--upto", ALL[1]]) == 0
    changed = _git(dest, "diff", "--name-only", "HEAD~1", "HEAD", "--", "assignments").split()
    assert changed and all(path.startswith(f"assignments/{ALL[1]}/") for path in changed)
    readme_section = _section((dest / "README.md").read_text(), "Getting new assignments")
    for advice in ("new folder under `assignments/`", "commit your work first", "git stash", "git pull",
                   "git stash pop", "cp -r assignments", "Never `git reset --hard`"):
        assert advice in readme_section, advice
    # a correction to a notebook students already have is announced, never silent
    capsys.readouterr()
    notebook = dest / "assignments" / ALL[0] / f"{ALL[0]}.ipynb"
    notebook.write_text(notebook.read_text().replace("\n", " \n", 1))
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qam", "a hand edit")
    assert edition_main([str(dest), "--upto", ALL[1]]) == 0
    out = capsys.readouterr().out
    assert "changes files students already have" in out and f"assignments/{ALL[0]}/{ALL[0]}.ipynb" in out


# -- make progress -------------------------------------------------------------
def _todos(notebook):
    """(grade_id, written?) of a notebook's TODOs, from its nbgrader metadata."""
    nb = nbformat.read(str(notebook), as_version=4)
    return [(c.metadata["nbgrader"]["grade_id"], c.cell_type == "markdown") for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and
            (c.cell_type == "markdown" or not c.metadata["nbgrader"].get("grade"))]


def _solution_code(assignment, grade_id):
    nb = nbformat.read(str(SOLUTIONS / assignment / f"{assignment}.ipynb"), as_version=4)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _processes_with(token):
    """Pids of processes whose environment holds ``token`` (kernels inherit it)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if token.encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


def _progress(edition, *args, token, **popen):
    env = dict(os.environ, PYTHONPATH=str(edition / "source_lib"), VAELAB_PROGRESS_TEST=token)
    env.pop("VAELAB_HIDDEN_REFERENCES", None)
    return subprocess.Popen([sys.executable, "-m", "vaelab.progress", "--root", str(edition), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="counts processes through /proc")


@needs_proc
def test_make_progress_on_a_blank_edition_says_not_attempted_for_every_todo(tmp_path):
    """The edition's own ``make progress`` (its .venv stood in for by this
    interpreter), on every released notebook as released."""
    dest = tmp_path / "student"
    assert edition_main([str(dest)]) == 0
    venv = dest / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "python").chmod(0o755)
    (dest / ".venv" / ".installed").touch()
    token = f"blank-{tmp_path.name}"
    env = dict(os.environ, PYTHONPATH=str(dest / "source_lib"), VAELAB_PROGRESS_TEST=token)
    env.pop("VAELAB_HIDDEN_REFERENCES", None)
    done = subprocess.run(["make", "progress"], cwd=dest, env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    lines = out.splitlines()
    for name in ALL:
        todos = _todos(dest / "assignments" / name / f"{name}.ipynb")
        assert todos
        for todo, _written in todos:
            line = next((l for l in lines if l.split()[:2] == [name, todo]), None)
            assert line is not None and line.split(None, 2)[2].startswith("not attempted"), (todo, out[-3000:])
        code = sum(not written for _, written in todos)
        # one progress line per notebook, with its run time
        assert any(re.fullmatch(rf"{name}\s+0 of {code} self-checks pass, [\d.]+ s", l) for l in lines), out
    assert "passes" not in out and "not yet" not in out
    assert _processes_with(token) == []


@needs_proc
def test_progress_says_passes_for_a_todo_filled_with_the_solution(week_one, tmp_path):
    dest = tmp_path / "student"
    shutil.copytree(week_one, dest, ignore=shutil.ignore_patterns(".git"))
    name = ALL[0]
    path = dest / "assignments" / name / f"{name}.ipynb"
    code = [todo for todo, written in _todos(path) if not written]
    solved, wrong = code[0], code[1]
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == solved:
            cell.source = _solution_code(name, solved)
        elif grade_id == wrong:  # an attempt that raises: not yet, with what went wrong
            cell.source = cell.source.replace("raise NotImplementedError()", "return undefined_name")
    nbformat.write(nb, str(path))
    run = _progress(dest, name, token=f"filled-{tmp_path.name}")
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out[-3000:]
    status = {line.split()[1]: line.split(None, 2)[2] for line in out.splitlines()
              if line.startswith(name) and len(line.split()) > 2 and line.split()[1] in dict(_todos(path))}
    assert status[solved] == "passes", out
    assert status[wrong].startswith("not yet (") and "undefined_name" in status[wrong], out
    assert all(s.startswith("not attempted") for t, s in status.items() if t not in (solved, wrong)), out
    assert _processes_with(f"filled-{tmp_path.name}") == []


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_progress_stopped_half_way_leaves_no_kernel_running(week_one, tmp_path, sig):
    # a TODO that takes a minute, so the signal surely arrives while a kernel runs it
    edition = tmp_path / "edition"
    shutil.copytree(week_one, edition, ignore=shutil.ignore_patterns(".git"))
    path = edition / "assignments" / ALL[0] / f"{ALL[0]}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    todo = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                and c.cell_type == "code")
    todo.source = "import time\ntime.sleep(60)\n" + todo.source
    nbformat.write(nb, str(path))
    token = f"stopped-{tmp_path.name}"
    run = _progress(edition, token=token)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_processes_with(token)) < 2:  # the kernel has started
        time.sleep(0.2)
    assert len(_processes_with(token)) >= 2
    run.send_signal(sig)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 130 and "interrupted" in out, out[-2000:]
    assert _processes_with(token) == []


@pytest.mark.slow
@needs_proc
def test_progress_says_passes_for_every_todo_of_the_solutions(tmp_path):
    """Every TODO filled with its solution passes under ``make progress``: no
    self-check depends on a cell that progress skips (``demo``, hidden tests)."""
    dest = tmp_path / "student"
    assert edition_main([str(dest)]) == 0
    expected = {}
    for name in ALL:
        path = dest / "assignments" / name / f"{name}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution"):
                cell.source = _solution_code(name, meta["grade_id"])
        nbformat.write(nb, str(path))
        expected[name] = [todo for todo, written in _todos(path) if not written]
    run = _progress(dest, token=f"solved-{tmp_path.name}")
    out, _ = run.communicate(timeout=900)
    assert run.returncode == 0, out[-3000:]
    for name, todos in expected.items():
        for todo in todos:
            assert any(line.split()[:3] == [name, todo, "passes"] for line in out.splitlines()), (todo, out)
    total = sum(map(len, expected.values()))
    assert f"{total} of {total} self-checks pass across {len(ALL)} notebooks" in out
    assert _processes_with(f"solved-{tmp_path.name}") == []


# -- publishing knows the calendar (issue 35) ---------------------------------
def test_the_readme_table_of_giveaways_is_read_from_the_notebooks():
    from grader.publish.edition import giveaway_table, giveaways

    readme = (grader.ROOT / "README.md").read_text()
    table = readme.split("<!-- giveaways -->\n", 1)[1].split("\n<!-- /giveaways -->", 1)[0]
    assert table == giveaway_table()
    # the course's design: 03 defines 02's reparameterize, and 04 and 05 contain 03's VAE
    found = giveaways()
    assert ("03_vae", "02_reparameterization", "reparameterize") in found
    assert {(later, todo) for later, earlier, todo in found if earlier == "03_vae"} >= {("04_generation", "VAE"),
                                                                                         ("05_likelihoods", "VAE")}
    assert all(grader.assignments().index(l) > grader.assignments().index(e) for l, e, _ in found)


def test_a_notebook_that_gives_away_an_open_answer_is_not_published(tmp_path, capsys):
    import datetime as dt

    from grader.publish.edition import calendar_problems, giveaways, main

    later, earlier, todo = giveaways()[0]
    now = dt.datetime(2026, 10, 10, 12, tzinfo=dt.timezone.utc)
    course = tmp_path / "course.toml"
    course.write_text(f'[due]\n"{earlier}" = 2026-10-09T23:59:00Z\n[extensions]\nann = {{ "{earlier}" = 48 }}\n')
    refusals, _ = calendar_problems([later], course, now)
    assert len(refusals) == 1 and later in refusals[0] and todo in refusals[0] and "ann's extension" in refusals[0]
    assert calendar_problems([later], course, now + dt.timedelta(days=2))[0] == []  # past due for everyone
    assert calendar_problems([earlier], course, now)[0] == []  # publishing only the earlier one gives nothing away
    course.write_text("[due]\n")
    refusals, warnings = calendar_problems([later], course, now)
    assert refusals == [] and any("no due date" in w for w in warnings)
    # the command refuses before writing anything, and says how to publish anyway
    course.write_text(f'[due]\n"{earlier}" = 2999-01-01T00:00:00Z\n')
    dest = tmp_path / "edition"
    assert main([str(dest), "--upto", later, "--course", str(course)]) == 2
    assert "FORCE=1" in capsys.readouterr().err and not dest.exists()


@pytest.mark.parametrize("repo_url", ["https://git.example.edu/course/vae-course-student.git",
                                      "https://github.com/vae-course/vae-course-student/"])
def test_the_nbgitpuller_link_opens_the_folder_nbgitpuller_clones_into(repo_url):
    import urllib.parse

    from grader.publish.edition import nbgitpuller_url

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(nbgitpuller_url(repo_url, "assignments/x/x.ipynb")).query)
    # nbgitpuller's rule (nbgitpuller/handlers.py, UIHandler.get): targetpath, else the repo URL's last part
    folder = (query.get("targetpath") or [query["repo"][0].rstrip("/").split("/")[-1]])[0]
    assert query["urlpath"][0] == f"lab/tree/{folder}/assignments/x/x.ipynb"
    assert not folder.endswith(".git")
