"""Demonstration cells and self-checks are left out while grading.

What makes that safe is checked here: the name analysis that refuses a
``demo`` tag whose variables a graded cell could read, ``make release``
refusing such a tag, and the executor running every graded or answer cell
whatever its key or tags. That the grades do not change is checked where
real submissions are graded (tests/test_grading.py and the mutation tests)."""
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader import SOLUTIONS, assignments
from grader.publish import release
from grader.notebooks import DEMO_TAG, demo_problems, read, read_names, skipped_while_grading, stored_names


def _cell(source, key, tags=(), nbgrader=None):
    cell = new_code_cell(source)
    cell.id = key
    if tags:
        cell.metadata["tags"] = list(tags)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "grade_id": key, "locked": True, "points": 0,
                                     "grade": False, "solution": False, "task": False, **nbgrader}
    return cell


def _nb(*cells):
    nb = new_notebook()
    nb.cells = list(cells)
    return nb


@pytest.mark.parametrize("name", assignments())
def test_every_solution_notebook_skips_only_demos_and_self_checks(name):
    nb = read(SOLUTIONS / name / f"{name}.ipynb")
    assert demo_problems(nb, name) == []
    skipped = set(skipped_while_grading(nb))
    tagged = {c.id for c in nb.cells if DEMO_TAG in c.metadata.get("tags", [])}
    self_checks = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                   if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("check-")}
    graded_or_answers = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                         if c.metadata.get("nbgrader", {}).get("grade") or c.metadata.get("nbgrader", {}).get("solution")}
    assert tagged and self_checks
    assert skipped == tagged | self_checks
    assert not skipped & graded_or_answers
    # the import cell and the given helpers always run
    assert not skipped & {c.id for c in nb.cells if "given" in c.metadata.get("tags", [])}


def test_names_a_cell_makes_and_reads():
    source = ("import numpy as np\nfrom os import path as p\nmodel = 1\nwith ctx() as (a, b):\n    CONFIG['k'] = 2\n"
              "    obj.attr = 3\nfor i in range(2):\n    pass\ndef helper(x):\n    y = x + limit\n    return y\n"
              "class K:\n    pass\n[j for j in data]\n")
    assert stored_names(source) == {"np", "p", "model", "a", "b", "CONFIG", "obj", "i", "helper", "K"}
    # helper's parameter and local are not globals it reads; `limit` is (when it is called)
    assert read_names(source) >= {"ctx", "range", "limit", "data"}
    assert not read_names(source) & {"x", "y", "j"}


def test_a_demo_whose_variable_a_graded_cell_reads_is_refused():
    demo = _cell("model = train()\nCONFIG['epochs'] = 1", "code-05", tags=[DEMO_TAG])
    reads_directly = _cell("print(model)", "test-f", nbgrader={"grade": True, "points": 1})
    reads_in_a_helper = _cell("def uses():\n    return CONFIG['epochs']", "code-07", tags=["given"])
    problems = demo_problems(_nb(demo, reads_directly, reads_in_a_helper), "nb")
    assert any("test-f" in p and "`model`" in p and "code-05" in p for p in problems)
    assert any("code-07" in p and "`CONFIG`" in p for p in problems)


def test_safe_demos_pass():
    demo = _cell("model = train()\nx = 3", "code-05", tags=[DEMO_TAG])
    later_demo = _cell("plot(model)", "code-06", tags=[DEMO_TAG])
    parameter = _cell("def f(model, x):\n    return model(x)", "f", nbgrader={"solution": True, "locked": False})
    rebinds = _cell("model = build()\nprint(model)", "code-09")
    assert demo_problems(_nb(demo, later_demo, parameter, rebinds), "nb") == []


def test_magics_are_read_as_the_calls_ipython_makes_and_unparsable_demos_are_refused():
    demo = _cell("%time model = train()", "code-05", tags=[DEMO_TAG])
    given = _cell("%timeit -n1 evaluate(model)", "code-06", tags=["given"])
    broken = _cell("plot(", "code-07", tags=[DEMO_TAG])
    problems = demo_problems(_nb(demo, given, broken), "nb")
    assert any("code-06" in p and "`model`" in p for p in problems)
    assert any("code-07" in p and "does not parse" in p for p in problems)


def test_a_demo_tag_on_an_nbgrader_cell_is_refused():
    test = _cell("grade('f', f)", "test-f", tags=[DEMO_TAG], nbgrader={"grade": True, "points": 1})
    assert any("test-f" in p and "nbgrader cell" in p for p in demo_problems(_nb(test), "nb"))
    assert skipped_while_grading(_nb(test)) == []


def test_make_release_refuses_an_unsafe_demo_tag(tmp_path, monkeypatch, capsys):
    name = assignments()[0]
    folder = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS / name, folder / name, ignore=shutil.ignore_patterns("data", "checkpoints", "*.pt"))
    path = folder / name / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    given = next(c for c in nb.cells if "given" in c.metadata.get("tags", []))
    given.metadata["tags"] = [DEMO_TAG]  # the import cell: every graded cell reads what it imports
    nbformat.write(nb, str(path))
    monkeypatch.setattr(release, "SOLUTIONS", folder)
    before = {p: p.stat().st_mtime_ns for p in release.RELEASE.rglob("*.ipynb")}
    assert release.main(["--check"]) == 1
    assert release.main([]) == 1
    out = capsys.readouterr().out
    assert "grading cannot skip" in out and given.id in out
    assert {p: p.stat().st_mtime_ns for p in release.RELEASE.rglob("*.ipynb")} == before  # nothing regenerated


def test_the_executor_runs_graded_and_answer_cells_whatever_their_key(tmp_path, monkeypatch):
    from nbgrader.preprocessors import Execute

    from grader.grade.tracked_execute import TrackedExecute, read_trail

    ran = []
    monkeypatch.setattr(Execute, "preprocess_cell", lambda self, cell, resources, index: (ran.append(cell.id), (cell, resources))[1])
    trail = tmp_path / "trail.jsonl"
    ex = TrackedExecute(skip_cells=["code-05", "check-f", "test-f", "f"], trail_file=str(trail))
    cells = [_cell("demo()", "code-05", tags=[DEMO_TAG]), _cell("check('f', f)", "check-f", nbgrader={}),
             _cell("grade('f', f)", "test-f", nbgrader={"grade": True, "points": 1}),
             _cell("def f(): ...", "f", nbgrader={"solution": True, "locked": False}),
             _cell("print(1)", "code-09")]
    for index, cell in enumerate(cells):
        ex.preprocess_cell(cell, {}, index)
    assert ran == ["test-f", "f", "code-09"]
    for cell in cells[:2]:
        assert cell.outputs and "Not run while grading" in cell.outputs[0]["text"]
    assert "self-check" in cells[1].outputs[0]["text"] and "demonstration" in cells[0].outputs[0]["text"]
    events = [(e["event"], e["cell"]) for e in read_trail(trail)]
    assert ("skipped", "code-05") in events and ("skipped", "check-f") in events
    assert ("start", "test-f") in events and ("done", "f") in events
