"""The release pipeline: references, regeneration, leak scan, notebook shape."""
import shutil

import nbformat
import pytest
import torch

import grader
from grader import HIDDEN_REFERENCES, RELEASE, SOLUTIONS, assignments
from grader.publish import leakscan
from grader.notebooks import defined_names, is_solution, is_test
from vaelab import references

ALL = assignments()


@pytest.mark.parametrize("name", ALL)
def test_hidden_inputs_differ_from_public_and_carry_versions(name):
    public = references.load(references.public_path(name))
    hidden = references.load(HIDDEN_REFERENCES / f"{name}.pt")
    for meta in (public["meta"], hidden["meta"]):
        assert meta["torch"] == torch.__version__.split("+")[0] and "sympy" in meta
    assert public["functions"].keys() == hidden["functions"].keys()
    for fname, spec in hidden["functions"].items():
        pub_cases = public["functions"][fname]["cases"]
        if spec["kind"] == "choice":  # a prediction has one input (the letters); its answer is what is hidden
            assert pub_cases[0]["expected"] != spec["cases"][0]["expected"]
            continue
        for case in spec["cases"]:
            assert "rtol" in case and "atol" in case and "expected" in case
            for pub in pub_cases:
                assert repr(case["args"]) != repr(pub["args"]), f"{fname}: a hidden case repeats a public one"
        shapes = lambda cases: {tuple(a.shape) for c in cases for a in c["args"] if isinstance(a, torch.Tensor)}
        if shapes(spec["cases"]) - {()}:  # scalar-only signatures have nothing to vary
            assert not shapes(spec["cases"]) <= shapes(pub_cases), f"{fname}: hidden shapes all appear publicly"


def test_public_references_load_without_running_code():
    for name in ALL:
        torch.load(references.public_path(name), weights_only=True)


def test_release_is_reproducible():
    from grader.publish.release import main

    assert main(["--check"]) == 0


def test_leak_scan_is_clean_and_catches_planted_leaks(tmp_path, monkeypatch):
    assert leakscan.scan() == []
    fake_release = tmp_path / "assignments"
    shutil.copytree(RELEASE, fake_release)
    nb_path = fake_release / "01_elbo" / "01_elbo.ipynb"
    nb = nbformat.read(str(nb_path), as_version=4)
    solution_src = nbformat.read(str(SOLUTIONS / "01_elbo" / "01_elbo.ipynb"), as_version=4)
    body = next(c for c in solution_src.cells if c.get("id") == "kl_standard_normal").source
    leaked_line = body.split("### BEGIN SOLUTION\n")[1].splitlines()[0].strip()
    nb.cells.append(nbformat.v4.new_code_cell(f"# copied\n{leaked_line}\n"))
    nbformat.write(nb, str(nb_path))
    shutil.copy(HIDDEN_REFERENCES / "01_elbo.pt", fake_release / "stolen.pt")
    (fake_release / "helper.py").write_text("def kl_standard_normal(mu, logvar):\n    pass\n")
    monkeypatch.setattr(leakscan, "RELEASE", fake_release)
    leaks = "\n".join(leakscan.scan())
    assert "solution code" in leaks
    assert "copy of a hidden reference file" in leaks
    assert "defines graded TODO kl_standard_normal" in leaks


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
def test_notebooks_are_stored_without_outputs(folder):
    for path in sorted((grader.ROOT / folder).rglob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path}: {cell.get('id')}"


@pytest.mark.parametrize("name", ALL)
def test_every_todo_has_a_self_check_and_a_hidden_test(name):
    nb = nbformat.read(str(SOLUTIONS / name / f"{name}.ipynb"), as_version=4)
    cells = nb.cells
    for i, cell in enumerate(cells):
        if not is_solution(cell):
            continue
        (todo,) = defined_names(cell.source)
        assert "### BEGIN SOLUTION" in cell.source and cell.source.index("def ") < cell.source.index("### BEGIN")
        check_cell, test_cell = cells[i + 1], cells[i + 2]
        assert f'check("{todo}"' in check_cell.source and check_cell.metadata.nbgrader["locked"]
        assert is_test(test_cell) and test_cell.metadata.nbgrader["points"] > 0
        assert "### BEGIN HIDDEN TESTS" in test_cell.source and f'grade("{todo}"' in test_cell.source


def test_released_notebooks_say_they_are_generated():
    assert "do not edit by hand" in (RELEASE / "README.md").read_text()
    for name in ALL:
        nb = nbformat.read(str(RELEASE / name / f"{name}.ipynb"), as_version=4)
        assert nb.metadata["vaelab"]["generated_from"] == f"solutions/{name}/{name}.ipynb"
