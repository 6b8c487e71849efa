"""Every catalogued misconception is caught by the public self-check (with its
own hint) and by the hidden test. This is the fast, in-process mutation test;
tests/test_grading.py repeats it through real nbgrader autograde."""
import pytest

from grader import SOLUTIONS, assignments, load_module
from grader.author.record import mutant_functions
from grader.author.mutants import catalogue
from grader.notebooks import exec_solution
from vaelab.checks import run

CASES = [(a, m.target, m.name) for a in assignments() if load_module("cases", a) for m in catalogue(a)]


@pytest.fixture(scope="module")
def mutants_by_assignment():
    out = {}
    for a in assignments():
        namespace = exec_solution(SOLUTIONS / a / f"{a}.ipynb")
        out[a] = {(m.target, m.name): m for ms in mutant_functions(a, namespace).values() for m in ms}
    return out


@pytest.mark.parametrize("assignment,target,name", CASES, ids=[f"{a}:{t}:{n}" for a, t, n in CASES])
def test_mutant_is_caught_with_its_hint(mutants_by_assignment, assignment, target, name):
    m = mutants_by_assignment[assignment][(target, name)]
    public = run(target, m.function, assignment=assignment)
    hidden = run(target, m.function, hidden=True, assignment=assignment)
    assert not hidden.passed, "the hidden test misses this mistake"
    assert any(m.hint in h for h in hidden.hints)
    if target.startswith("predict_"):
        # a prediction is made before the experiment: the self-check only records it, never judges it
        assert public.passed and not public.hints, public.lines()
        return
    assert not public.passed, "the self-check misses this mistake"
    assert any(m.hint in h for h in public.hints), f"self-check gives {public.hints} instead of the mutant's hint"


def test_hints_are_distinct_sentences():
    for a in assignments():
        hints = [m.hint for m in catalogue(a)]
        assert len(hints) == len(set(hints))
        assert all(h.endswith(".") and len(h) < 200 for h in hints)
