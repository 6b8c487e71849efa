"""Sealed grading (grader/grade/seal.py): the hidden answers never enter the kernel,
and the grader reads what the kernel recorded without trusting it."""
import os

import pytest
import sympy as sp
import torch

import grader
from grader.grade import seal
from grader.author.record import mutant_functions
from grader.notebooks import exec_solution
from vaelab import checks, references

A = "01_elbo"


def _stack_walker(mu, logvar):
    """A hostile answer: look up the caller's frames for the case being graded."""
    frame = getattr(__import__("sys"), "_getframe")(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, dict) and "expected" in value and "args" in value:
                if torch.equal(value["args"][0], mu):
                    return value["expected"]
        frame = frame.f_back
    return torch.zeros(mu.shape[0])


@pytest.fixture
def sealed(tmp_path, monkeypatch):
    """A kernel-like environment: the inputs-only files and a results folder."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "results").mkdir()
    for a in grader.assignments():
        data = references.load(grader.HIDDEN_REFERENCES / f"{a}.pt")
        references.save(references.inputs_only(data), tmp_path / "inputs" / f"{a}.pt")
    full = references.load(grader.HIDDEN_REFERENCES / f"{A}.pt")
    monkeypatch.setenv("VAELAB_HIDDEN_REFERENCES", str(tmp_path / "inputs"))
    monkeypatch.setenv("VAELAB_SEALED_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(checks, "_INDEX", {})
    return tmp_path, full


def _verdict(folder, name, full):
    answers = references.load_answers(folder / "results" / f"{name}.pt")
    return checks.judge(name, full["functions"][name], answers["cases"])


def test_inputs_only_file_carries_no_answers(sealed):
    folder, full = sealed
    stripped = references.load(folder / "inputs" / f"{A}.pt")
    for name, spec in stripped["functions"].items():
        assert len(spec["cases"]) == len(full["functions"][name]["cases"])
        for case in spec["cases"]:
            assert "expected" not in case and "mutants" not in case and "args" in case


def test_a_stack_walk_finds_answers_in_process_but_not_when_sealed(sealed, monkeypatch):
    folder, full = sealed
    # Unsealed (the comparison runs beside student code): the walk reads the answers and passes.
    monkeypatch.delenv("VAELAB_SEALED_RESULTS")
    monkeypatch.setenv("VAELAB_HIDDEN_REFERENCES", str(grader.HIDDEN_REFERENCES))
    monkeypatch.setattr(checks, "_INDEX", {})
    checks.grade("kl_standard_normal", _stack_walker)  # would raise if it failed
    # Sealed: the kernel only records; the grader's verdict fails the walk.
    monkeypatch.setenv("VAELAB_SEALED_RESULTS", str(folder / "results"))
    monkeypatch.setenv("VAELAB_HIDDEN_REFERENCES", str(folder / "inputs"))
    monkeypatch.setattr(checks, "_INDEX", {})
    checks.grade("kl_standard_normal", _stack_walker)
    assert not _verdict(folder, "kl_standard_normal", full).passed


@pytest.mark.parametrize("assignment", grader.assignments())
def test_sealed_mutation_score_is_complete(sealed, assignment):
    """Recorded in a sealed kernel, judged by the grader: solutions pass, every
    catalogued mutant fails with its own hint, unfinished code is reported."""
    folder, _ = sealed
    full = references.load(grader.HIDDEN_REFERENCES / f"{assignment}.pt")
    namespace = exec_solution(grader.SOLUTIONS / assignment / f"{assignment}.ipynb")
    mutants = mutant_functions(assignment, namespace)
    for name in full["functions"]:
        checks.grade(name, namespace[name], assignment=assignment)
        assert _verdict(folder, name, full).passed, name
        for m in mutants.get(name, []):
            checks.grade(name, m.function, assignment=assignment)
            report = _verdict(folder, name, full)
            assert not report.passed, f"{m.name} passes sealed grading"
            assert any(m.hint in h for h in report.hints), (m.name, report.hints)

    def unfinished(*args, **kwargs):
        raise NotImplementedError()

    name = next(iter(full["functions"]))
    checks.grade(name, unfinished, assignment=assignment)
    report = _verdict(folder, name, full)
    assert not report.passed and "not implemented yet" in report.results[0].detail


def test_recorded_answers_are_read_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    hostile = {"__sympy__": f"__import__('pathlib').Path({str(marker)!r}).touch()"}
    torch.save({"name": "x", "cases": [hostile]}, tmp_path / "x.pt")
    with pytest.raises(ValueError):
        references.load_answers(tmp_path / "x.pt")
    assert not marker.exists()
    # a pickle that runs code on load is refused by the weights-only loader
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    (tmp_path / "y.pt").write_bytes(pickle.dumps({"name": "y", "cases": [Boom()]}, protocol=2))
    with pytest.raises(Exception):
        references.load_answers(tmp_path / "y.pt")
    assert not marker.exists()
    # links are not followed (a kernel could point one at the hidden answers)
    (tmp_path / "link.pt").symlink_to(grader.HIDDEN_REFERENCES / f"{A}.pt")
    with pytest.raises(OSError):
        references.load_answers(tmp_path / "link.pt")


def test_answers_survive_the_round_trip():
    x, y = sp.symbols("x y", positive=True)
    values = [sp.log(x) / 2 - sp.Rational(3, 4) * y ** 2 + sp.pi, torch.arange(6.0).reshape(2, 3),
              (torch.tensor(1.5), torch.tensor([2.0])), 3, 2.5, None]
    encoded = [references.encode_answer(v) for v in values]
    decoded = [references.decode_answer(e) for e in encoded]
    assert sp.simplify(decoded[0] - values[0]) == 0
    assert torch.equal(decoded[1], values[1])
    assert torch.equal(decoded[2][0], values[2][0]) and isinstance(decoded[2], tuple)
    assert decoded[3:] == [3, 2.5, None]
    foreign = references.decode_answer(references.encode_answer(object()))
    assert type(foreign).__name__ == "object"


def test_kernel_sandbox_hides_files_where_the_os_allows(tmp_path):
    prefix, reason = seal.isolation()
    if not prefix:
        pytest.skip(f"no kernel isolation here: {reason}")
    assert "unshare" in prefix[0]
    # isolation() itself only returns a prefix after proving, in a real launch, that a
    # hidden file and another kernel's home were invisible and that its own home was not.
