"""The README names only things that exist, and its Binder badge opens
JupyterLab on the first assignment."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_relative_links_point_to_existing_files():
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), f"README links to missing {link}"


def test_the_instructor_readme_sends_students_to_the_edition_not_here():
    """No Binder badge into the instructor repository (it holds the answers);
    the student edition's README carries the badge (tests/test_edition.py)."""
    assert "mybinder.org/v2" not in README
    assert "make student-edition" in README and "student edition" in README


def test_every_make_target_in_the_readme_exists():
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"make ([a-z][a-z-]+)", README)):
        assert re.search(rf"^{target}:", makefile, re.M), f"README mentions `make {target}`"


def test_every_python_module_the_makefile_runs_is_runnable():
    """`$(PY) -m pkg.mod` in a recipe must name a module (or a package with
    a __main__), or that make target fails for the instructor."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT))
    makefile = (ROOT / "Makefile").read_text()
    modules = set(re.findall(r"\$\(PY\) -m ([A-Za-z_][\w.]*)", makefile))
    # the project's own modules (looking up pip here would switch off setuptools' distutils shim)
    modules = {m for m in modules if (ROOT / m.split(".")[0]).is_dir()}
    assert "grader.author.record" in modules
    for name in modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"Makefile runs missing module {name}"
        if spec.submodule_search_locations is not None:  # a package needs a __main__
            assert importlib.util.find_spec(f"{name}.__main__") is not None, f"`python -m {name}` cannot run"


def test_the_course_tables_follow_the_notebooks():
    """The course table has one row per folder of solutions/, in course order, naming every TODO of
    its notebook and how many predictions it has; the Binder timing table has one row per assignment.
    (`make assignment` and `make todo` keep them so; grader/author/scaffold.py: course_problems.)"""
    from grader.author.scaffold import course_problems

    problems = [p for p in course_problems(ROOT) if p.startswith("README.md")]
    assert not problems, "\n".join(problems)


def test_the_course_table_check_can_fail(tmp_path):
    """A row that forgets a TODO, a missing row and a stale prediction count are each named."""
    import shutil

    from grader.author.scaffold import course_problems

    for folder in ("solutions", "grader"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.pt", "data", "checkpoints",
                                                                                      "__pycache__", "references"))
    text = README.replace(", `kl_standard_normal` (PyTorch)", "").replace("one prediction", "two predictions")
    lines = [line for line in text.splitlines() if not line.startswith("| 04_generation |")]
    (tmp_path / "README.md").write_text("\n".join(lines) + "\n")
    problems = "\n".join(course_problems(tmp_path))
    assert "row of 01_elbo does not name the TODO `kl_standard_normal`" in problems
    assert "row of 02_reparameterization should say one prediction" in problems
    assert "Binder timing table's rows are" in problems and "'05_likelihoods']" in problems
